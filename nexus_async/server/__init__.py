"""The local Nexus batch server: the batch API of ``spec/batch-api.md``, offline.

It really runs the pipeline (fetch items, decode images, predict, deliver signed results
to webhooks, write logs) so that the SDK's tests, the demo and users' own tests of their
orchestration code and webhook receivers work without the hosted service. It speaks
plain JSON dicts written from the spec and does not import the SDK's models: two
independent readings of the contract check each other. It runs under asyncio and trio
(hypercorn serves it; the runner uses anyio only).

Public names are exactly those in ``__all__`` below, re-exported here with
``__module__`` set to ``nexus_async.server``: ``LocalNexus`` (serve on a loopback port),
``create_app`` (the bare ASGI app), ``ServerSettings`` (every option, written once, shared
by both and by ``nexus-async serve``, whose flags ``ServerSettings.add_arguments``
writes), ``serve_asgi`` (serve any ASGI app, e.g. a test's webhook
receiver, on the running backend), ``Predictor`` / ``Prediction`` / ``Tag`` /
``ForegroundPredictor`` / ``PredictionError`` (the model), ``Fault`` and ``RequestRecord``
(testing controls), ``NexusCore`` (what ``create_app`` keeps on ``app.state.nexus``;
``LocalNexus`` is one). Every module of this package is private (its name starts with an
underscore) and so is every name not listed here, including the domain errors of
``_errors`` and the layers below:

``_state``
    the in-memory projects, datasets, webhooks, jobs; no I/O, no HTTP, no cancel scopes.
``_errors``
    the domain errors the state and the handlers raise (``Invalid``, ``NotFound``, ...).
``_app``
    the routes, and the one table mapping each domain error type to its HTTP status.
``_runner``
    the pipeline; it owns every job's task and cancel scope.
``_settings``, ``_core``, ``_local``, ``_serve``
    the options, the server without a socket, the server on a socket, hypercorn.

Decisions where the spec is silent:

Upload URL
    ``PUT {base_url}/_nexus/uploads/{token}``; ``token`` is random and needs no
    ``Secret-Key`` (like a signed GCS URL), valid for one hour. The required headers are
    ``Content-Type: application/x-ndjson`` and ``x-goog-hash: crc32c=<declared crc32c>``;
    a missing or different one is 400. The body must have exactly ``sizeBytes`` bytes and
    the declared CRC32C (else 400 and ``FailedUpload``). Then each line is read as
    ``{"kind": "Image", "url": ...}`` with an http(s) or data: URL (blank lines skipped);
    a bad line makes the dataset ``FailedProcessing`` with ``line N: ...`` in its message,
    and the PUT still answers 200 (the upload itself worked). Re-sending the same file
    after success is a harmless 200, so a client may retry a PUT whose answer it lost;
    retrying after ``FailedUpload`` uploads again; a PUT while one is in progress is 409.
    The base URL in ``uploadUrl`` is the one the request came in on (its Host header).
    A dataset's ``expiryTime`` is seven days after its creation (nothing expires it).

Responses and validation
    Successful calls answer 200. Bodies must be UTF-8 JSON objects of at most
    ``max_body_bytes`` (1 MiB; 413 above). A wrong or missing field is 400 naming its
    path (``spec.retries.maxRetries``); an unknown referenced resource is 404 naming it;
    a dataset that is not ``Uploaded`` is 409. Auth is checked first: 401 without a key,
    403 for a key that is not the project's (or an unknown project), so another project's
    ids are never confirmed. ``limit`` outside 1..1000 is 400; ``maxEntries`` above 1000 is
    capped, below 1 is 400; ``minLevel`` is case-insensitive. Webhook secrets must be
    base64 of 24..64 bytes (Standard Webhooks' range; a ``whsec_`` prefix is accepted).
    A webhook created without ``spec.secret`` gets a fresh one (32 random bytes),
    returned once, in the create answer only, as ``"secret": {"contents": ...}``; a
    ``secret`` in a webhook PATCH is 400 naming the ``PUT .../secret`` call (never
    silently ignored).
    Webhook ``maxRetries`` is 0..20, ``maxBackoffMs`` 0..3,600,000. An ephemeral
    deployment's ``artifactId`` must start with ``artifact_``; there is no artifact store,
    so any such id is accepted and runs the same predictor. A job's destinations must
    not list one webhook twice.

    Nothing is stored by a call that then fails: input that no response could carry
    back is refused first, anywhere in a body (values and keys): lone surrogate
    escapes (``"\\ud800"``), nesting deeper than 32, ``NaN``/``Infinity``, and integers
    beyond +-(2**53 - 1) (so every timestamp is a real date). Item URLs and webhook
    endpoints must be http(s) URLs with a host, a port within 1..65535 and no
    whitespace or control characters. A request body must arrive within
    ``body_timeout`` (30 s) plus 1 s per MiB declared, else 408 (an upload becomes
    ``FailedUpload``); a body a handler did not read (a rejected upload) is drained
    before the answer (up to 64 MiB, else the connection is closed after it), so the
    client reads the real status instead of a reset.

Cursors
    ``nextPage``/``prevPage`` are ``base64url(json([collection, "next"|"prev",
    createDate, id]))``: "items strictly older/newer than this key". They name a
    boundary, not an offset, so they stay valid while items are created or deleted.
    A cursor of another collection, or garbage, is 400.

Jobs
    ``job_concurrency`` jobs move items at once, each with up to ``item_concurrency``
    items in flight. A job waits (``Waiting``/``Waiting``) until ``startAtTime`` and its
    slot, then runs (``Waiting``/``Running``). The cancel PATCH cancels when
    ``stopAtTime <= now`` (``cancelledAt`` is the server's time of the cancel, and
    ``spec.stopAtTime`` becomes it); a later ``stopAtTime`` just moves the stop time.
    Cancelling or deleting a terminal job changes nothing. When the stop time passes
    first: ``Failed``, message ``Stop time reached``. The CPU stages (decode, predict)
    share one worker-thread hop, so ``Preprocessed`` and ``Predicted`` of an item are
    counted together once prediction is done (each with its own ``timeMs``).

Logs
    ``JobStarted`` (status ``Running``), one entry per stage outcome (``ItemGathered``,
    ``ItemPreprocessed``, ``ItemPredicted``, ``ItemDelivered`` with the stage as status;
    ``ItemFailed`` at level Error with ``Failed*`` as status and a reason),
    ``JobCancelled`` (Warning) and ``JobFinished`` (Info, ``Reached``; or Error,
    ``Failed`` at the stop time). Entry ids are a 24-hex-digit process-wide sequence, so
    (createTime, id) order is write order within a millisecond. Each job's log is kept
    sorted per level, so a page costs O(log n + page) even at a million entries.

Delivery
    Body ``{"jobId", "projectId", "item", "deliveryId": "delivery_<uuid>", "createTime",
    "predictions"}``; attempt k+1 waits ``min(maxBackoffMs, 250 ms * 2**(k-1))`` (no
    jitter, so timing is predictable). Any non-2xx, connection error or timeout
    (``delivery_timeout``) is retried; redirects are not followed. Each attempt is signed
    afresh (new ``webhook-timestamp``) with the secret as it is then. With several
    destinations an item is ``Delivered`` only if every one accepted it. The ``:test``
    call sends the same shape with ``"jobId": ""``, ``"predictions": []`` and
    ``"test": true``, makes exactly one attempt (bounded by ``delivery_timeout``,
    whatever the retry policy), and answers ``{"status": "Succeeded"|"Failed",
    "responseCode" (0 without a response), "latencyMs", "attemptCount": 1, "body": ""
    (the endpoint's answer is never returned), "reason" ("" on success, else e.g.
    ``HTTP 500`` or ``ConnectError: ...``)}``.

Destinations
    Item URLs and webhook endpoints are fetched wherever they point while
    ``allow_private_addresses`` is on (the default: receivers and item servers of local
    development run on this machine). Off, each host is resolved and every address
    must be public: loopback, link-local, private and reserved ones fail the item
    (``FailedGather``, ``destination refused: ...``) or the delivery (no attempt is made;
    ``:test`` answers ``attemptCount`` 0) before any connection is opened, and the
    request is pinned to the address that was checked. Neither ``:test`` nor the job log
    ever shows what an endpoint answered beyond its status.

OpenAPI
    ``GET {base_url}/openapi.json`` (no auth) is an OpenAPI 3.1 document of the 17 batch
    operations, written from the spec (not generated from the routes), with links from
    each create call for stateful fuzzers; ``.ci/run`` fuzzes the server with it.

Clock
    ``clock="real"`` (the default) or ``"manual"``. On the manual clock the server's
    time starts at the real time and moves only by ``await nexus.advance(seconds)`` /
    ``advance_to(ms)``: timers (start times, stop times, retry backoff, delivery
    delays) fire in order, each with the clock at its own time, and each step waits
    for the work it woke to finish or sleep again (up to 30 s of real time). Every
    timestamp, stage duration (except the CPU stages' own ``timeMs``, measured in real
    time) and ``webhook-timestamp`` follows it; request-log times stay real.

State file
    With ``state_file``, the store is written to SQLite every half second (what changed,
    one transaction, in a worker thread) and at shutdown, and read back at start;
    jobs not finished then end ``Failed`` / ``Server restarted``. The first project
    stays the file's (``project_id`` and ``secret_key`` options then do not apply).
    A file that is not SQLite or not this format (``meta`` table) is a
    ``StateFileError`` at start; a missing or empty file starts fresh.

Delivery scenarios
    ``duplicate_deliveries``, ``delay_deliveries``, ``reorder_deliveries``,
    ``drop_deliveries`` and ``normal_deliveries`` change what happens to job
    deliveries (not ``:test`` calls) from the next one on.

Static files
    ``GET {base_url}/static/{path}`` serves ``static_dir`` without auth (404 JSON
    outside it). Item URLs pointing there are fetched over HTTP like any other, so
    faults injected on ``/static/...`` make gathers fail.

ASGI-transport mode
    ``create_app()`` returns a Starlette app whose lifespan runs the job runner; an ASGI
    server runs it, ``httpx.ASGITransport`` does not. Enter
    ``async with app.router.lifespan_context(app):`` around such a client; without it,
    job creation and webhook tests answer 503 ``runner_not_running`` (everything else
    works). ``LocalNexus.app`` is the app of a running server and needs nothing more.

Fault injection and admin API
    ``NexusCore.inject_fault`` (or ``POST /_nexus/faults`` with the same fields in
    camelCase) makes the next matching requests answer a status (with optional
    ``Retry-After``), wait first (a wait ends early if the client hangs up), drop the TCP
    connection without any response (the server-side socket is found among the
    process's descriptors and shut down: Linux and macOS; under ``ASGITransport`` the app
    raises ``httpx.RemoteProtocolError`` instead), or do any of these after the real
    handler ran (``after_handling``). Faults apply to API, upload and static paths,
    first-added first. The request log records API and upload requests (not static files
    or admin calls). Admin routes under ``/_nexus/`` (``faults``, ``requests``,
    ``projects``, ``seed/logs``, ``seed/datasets``, ``seed/webhooks``, ``log-ties``) need
    the first project's ``Secret-Key``; ``/_nexus/health`` is open.
"""

from __future__ import annotations

from ._app import create_app
from ._core import NexusCore
from ._faults import Fault, RequestRecord
from ._local import LocalNexus
from ._predictor import ForegroundPredictor, Prediction, PredictionError, Predictor, Tag
from ._serve import serve_asgi
from ._settings import ServerSettings

__all__ = [
    "Fault",
    "ForegroundPredictor",
    "LocalNexus",
    "NexusCore",
    "Prediction",
    "PredictionError",
    "Predictor",
    "RequestRecord",
    "ServerSettings",
    "Tag",
    "create_app",
    "serve_asgi",
]

for _name in __all__:  # tracebacks and reprs show the public path
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("nexus_async.server._"):
        _obj.__module__ = "nexus_async.server"
del _name, _obj
