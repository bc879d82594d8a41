"""A pytest plugin for testing code that uses Nexus: a real local server, offline.

Installed with the package (a ``pytest11`` entry point), it is active when the
``server`` extra is installed; without it this module imports cleanly and adds nothing.

Fixtures:
    ``nexus``: a ``NexusProject``, a fresh isolated project on one ``LocalNexus`` shared
        by the session (it runs on its own thread and event loop, so it works whatever
        anyio backend each test uses). It has ``base_url``, ``project_id``,
        ``secret_key``, ``deployment_id`` (ready for ``jobs.create``),
        ``dataset_from_images`` / ``dataset_from_files`` / ``dataset_from_urls``,
        ``webhook``, ``inject_fault`` and ``requests``. The test's unfinished jobs are
        cancelled and its faults cleared after it.
    ``nexus_client``: an ``AsyncClient`` for that project, closed after the test.
    ``nexus_receiver``: a ``NexusReceiver``: a ``DeliveryReceiver`` served on loopback
        with a webhook of the project (``webhook_id``) posting to it; ``deliveries``
        holds what it received and ``await wait_for(n)`` waits for ``n`` of them.
    ``nexus_server``: the session's ``NexusServer`` (``core`` is the ``LocalNexus``).
    ``nexus_settings``: the server's ``ServerSettings``; override this session fixture
        to change them.

Example:
    ```python
    async def test_job(nexus, nexus_client, nexus_receiver):
        dataset_id = await nexus.dataset_from_images([Image.new("RGB", (32, 32))])
        jobs = nexus_client.get_project(nexus.project_id).batch.jobs
        job = await jobs.create("t", {"dataset_id": dataset_id,
                                      "webhook_id": nexus_receiver.webhook_id,
                                      "deployment_id": nexus.deployment_id})
        await jobs.wait_until_done(job.id, timeout=30)
        assert len(await nexus_receiver.wait_for(1)) == 1
    ```
"""

from __future__ import annotations

# The modules the server extra brings; missing ones make this plugin a no-op.
_SERVER_EXTRA = {"starlette", "hypercorn", "PIL", "google_crc32c", "sniffio"}

try:
    from ._testkit import (
        NexusProject,
        NexusReceiver,
        NexusServer,
        nexus,
        nexus_client,
        nexus_receiver,
        nexus_server,
        nexus_settings,
    )
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] not in _SERVER_EXTRA:
        raise
    __all__: list[str] = []
else:
    __all__ = [
        "NexusProject",
        "NexusReceiver",
        "NexusServer",
        "nexus",
        "nexus_client",
        "nexus_receiver",
        "nexus_server",
        "nexus_settings",
    ]
