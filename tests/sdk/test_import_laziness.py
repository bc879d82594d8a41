"""What `import nexus_async` loads: next to nothing; the rest comes when first used.

Each case runs in a fresh interpreter (this one has long imported everything) with
click hidden, as in a plain install, where httpx then skips its command line and
the rich it brings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Never loaded by importing the package or making a client: the converter's
# machinery (cattrs), the optional resources and the receiver, and nothing of the
# server, the CLI or rich.
HEAVY = (
    "cattrs",
    "nexus_async._datasets",
    "nexus_async._webhooks",
    "nexus_async.receiver",
    "nexus_async.server",
    "nexus_async.cli",
    "rich",
    "starlette",
    "hypercorn",
)


def _run(code: str) -> dict[str, list[str]]:
    """Run `code` in a fresh interpreter; it leaves what to report in `found`."""
    script = (
        textwrap.dedent(
            """
        import json, sys
        sys.modules["click"] = None  # as if click were not installed
        HEAVY = {heavy!r}
        def loaded(*names):
            below = tuple(n + "." for n in names)
            return sorted(m for m in sys.modules if m in names or m.startswith(below))
        found = {{}}
        """
        ).format(heavy=HEAVY)
        + textwrap.dedent(code)
        + "\nprint(json.dumps(found))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_package_loads_only_the_errors() -> None:
    found = _run(
        """
        import nexus_async
        found["ours"] = loaded("nexus_async")
        found["libraries"] = loaded("httpx", "anyio", "attrs", *HEAVY)
        """
    )
    assert found["ours"] == ["nexus_async", "nexus_async._version", "nexus_async.errors"]
    assert found["libraries"] == []


def test_a_client_and_its_jobs_load_no_converter_datasets_webhooks_or_receiver() -> None:
    found = _run(
        """
        from nexus_async import AsyncClient, Job, JobOptions
        client = AsyncClient("sk_test", base_url="http://127.0.0.1:9")
        jobs = client.get_project("proj_1").batch.jobs
        found["heavy"] = loaded(*HEAVY)
        found["client"] = loaded("httpx", "nexus_async._jobs", "nexus_async.models")
        """
    )
    assert found["heavy"] == []
    assert {"httpx", "nexus_async._jobs", "nexus_async.models"} <= set(found["client"])


def test_everything_works_once_used() -> None:
    found = _run(
        """
        import nexus_async
        from nexus_async import AsyncClient
        batch = AsyncClient("sk_test", base_url="http://127.0.0.1:9").get_project("p1").batch
        found["before"] = loaded(*HEAVY)
        found["resources"] = [type(batch.datasets).__name__, type(batch.webhooks).__name__]
        found["same"] = [str(batch.datasets is batch.datasets)]
        data = {"id": "batchjob_1", "deleted": True}
        found["decoded"] = [repr(nexus_async.structure(data, nexus_async.DeleteResponse))]
        receiver = nexus_async.DeliveryReceiver, nexus_async.verify_delivery
        found["receiver"] = [obj.__module__ for obj in receiver]
        found["after"] = loaded(*HEAVY)
        found["dir"] = sorted(set(nexus_async.__all__) - set(dir(nexus_async)))
        namespace = {}
        exec("from nexus_async import *", namespace)
        found["star"] = sorted(set(nexus_async.__all__) - set(namespace))
        """
    )
    assert found["before"] == []
    assert found["resources"] == ["Datasets", "Webhooks"]
    assert found["same"] == ["True"]  # made once per project, on first use
    assert found["decoded"] == ["DeleteResponse(id='batchjob_1', deleted=True)"]
    assert found["receiver"] == ["nexus_async", "nexus_async"]
    assert {"cattrs", "nexus_async._datasets", "nexus_async._webhooks", "nexus_async.receiver"} <= {
        name.split(".")[0] if name.startswith("cattrs") else name for name in found["after"]
    }
    assert not {m for m in found["after"] if m.split(".")[0] in {"rich", "starlette", "hypercorn"}}
    assert not [
        m for m in found["after"] if m.startswith(("nexus_async.server", "nexus_async.cli"))
    ]
    assert found["dir"] == []
    assert found["star"] == []


def test_an_unknown_name_is_an_attribute_error() -> None:
    found = _run(
        """
        import nexus_async
        try:
            nexus_async.NoSuchThing
        except AttributeError as exc:
            found["error"] = [str(exc)]
        found["hasattr"] = [str(hasattr(nexus_async, "Job")), str(hasattr(nexus_async, "nope"))]
        """
    )
    assert found["error"] == ["module 'nexus_async' has no attribute 'NoSuchThing'"]
    assert found["hasattr"] == ["True", "False"]
