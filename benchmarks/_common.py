"""What every benchmark shares: the server process, the contenders' clients, timing, the table.

The server runs as a separate process (`python -m nexus_async.cli serve`, the
`nexus-async serve` command), so that the client's CPU time is never charged to the
server or the other way round. On a machine with two or more cores the server is
pinned to the last core and the benchmark process (and every child it starts) to
the others, so the two do not steal each other's core. Seeding goes through the
server's admin routes (`/_nexus/seed/...`), the HTTP twins of `LocalNexus.seed_*`.

Every loop here is bounded both in count and in time.
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import json
import os
import platform
import re
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEAD_ENDPOINT",
    "Report",
    "Row",
    "Server",
    "Stopwatch",
    "Target",
    "Timing",
    "alternate",
    "bench_main",
    "fmt_ratio",
    "fmt_seconds",
    "machine_info",
    "median",
    "peak_rss_mb",
    "pin_client",
    "png_data_url",
    "reference_project",
    "render",
    "run_child",
    "serve",
    "stop_process",
    "time_limit",
]

T = TypeVar("T")

# A webhook endpoint nobody listens on: a delivery fails at once (connection refused),
# so a job of one item finishes within milliseconds of starting.
DEAD_ENDPOINT = "http://127.0.0.1:9/unreachable"

_SERVER_START_TIMEOUT = 30.0


# ----------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> list[tuple[str, str]]:
    """What the numbers were measured on: CPU, cores, OS, Python, package versions."""
    versions = ", ".join(
        f"{dist} {_version(dist)}"
        for dist in (
            "nexus-async",
            "httpx",
            "anyio",
            "attrs",
            "cattrs",
            "hypercorn",
            "datature",
            "requests",
            "msgspec",
        )
    )
    return [
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", versions),
        ("pinning", _pinning_text()),
    ]


def _cpus() -> list[int]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


@functools.cache
def _split_cpus() -> tuple[list[int], list[int]] | None:
    """(client cores, server core), or None where pinning is unavailable or pointless.

    Decided once, before `pin_client` narrows this process's own affinity.
    """
    cpus = _cpus()
    if len(cpus) < 2 or os.environ.get("NEXUS_BENCH_NO_PIN"):
        return None
    return cpus[:-1], cpus[-1:]


def _pinning_text() -> str:
    split = _split_cpus()
    if split is None:
        return "none (server and client share the cores)"
    client, server = split
    return f"server process on core {server[0]}, benchmark process on core(s) {client}"


def pin_client() -> None:
    """Pin this process (and so its future children) away from the server's core."""
    split = _split_cpus()
    if split is not None:
        os.sched_setaffinity(0, split[0])


# ------------------------------------------------------------------------------ server


@dataclass
class Server:
    """A running local Nexus server process and its admin routes."""

    base_url: str
    secret_key: str
    project_id: str
    deployment_id: str
    latency: float
    pid: int
    _admin: httpx.Client = field(repr=False)

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (Linux; NaN elsewhere)."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        response = self._admin.post(path, json=dict(body))
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def seed_dataset(self, urls: Sequence[str]) -> str:
        """An already uploaded dataset of these item URLs."""
        return str(self._post("/_nexus/seed/datasets", {"urls": list(urls)})["id"])

    def seed_webhook(
        self, endpoint: str, *, max_retries: int, max_backoff_ms: int, secret: str | None = None
    ) -> str:
        body: dict[str, Any] = {
            "endpoint": endpoint,
            "maxRetries": max_retries,
            "maxBackoffMs": max_backoff_ms,
        }
        if secret is not None:
            body["secret"] = secret
        return str(self._post("/_nexus/seed/webhooks", body)["id"])

    def seed_logs(
        self, job_id: str, count: int, *, per_ms: int = 1, start_time: int | None = None
    ) -> None:
        """`count` synthetic log entries for the job, `per_ms` sharing each millisecond.

        They start at `start_time` (epoch ms; default: so that the last one is now).
        """
        body: dict[str, Any] = {"jobId": job_id, "count": count, "perMs": per_ms}
        if start_time is not None:
            body["startTime"] = start_time
        self._post("/_nexus/seed/logs", body)

    def fast_job_options(self, items: int = 1, **times: int) -> dict[str, Any]:
        """Job options over `items` tiny images whose deliveries fail at once."""
        return {
            "dataset_id": self.seed_dataset([png_data_url()] * items),
            "webhook_id": self.seed_webhook(DEAD_ENDPOINT, max_retries=0, max_backoff_ms=1),
            "deployment_id": self.deployment_id,
            **times,
        }

    def reference_project(self) -> Any:
        """The reference SDK's project object for this server."""
        return reference_project(self.base_url, self.secret_key, self.project_id)

    def requests(self) -> list[dict[str, Any]]:
        """The server's log of API requests (method, path, query, status, time)."""
        response = self._admin.get("/_nexus/requests")
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()["data"]
        return records

    def clear_requests(self) -> None:
        self._admin.delete("/_nexus/requests").raise_for_status()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server process: SIGTERM, then SIGKILL after 10 s; close its stdout."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def _read_banner(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The server's start-up text, up to its last line (the secret key)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    text = b""
    while b"DATATURE_SECRET_KEY=" not in text or not text.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"the server did not start within {timeout} s: {text!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the server exited at start-up: {text!r}")
            text += chunk
    return text.decode()


@contextmanager
def serve(latency: float = 0.0) -> Iterator[Server]:
    """Run `nexus-async serve --latency ...` as a child process for the block."""
    import httpx  # here, so that children which only stream or import stay light

    command = [sys.executable, "-m", "nexus_async.cli", "serve", "--latency", str(latency)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        split = _split_cpus()
        if split is not None:
            os.sched_setaffinity(proc.pid, split[1])
        banner = _read_banner(proc, _SERVER_START_TIMEOUT)
        found = dict(re.findall(r"export (\w+)=(\S+)", banner))
        deployment = re.search(r"deployment id:\s+(\S+)", banner)
        assert deployment is not None, banner
        base_url = found["DATATURE_API_BASE_URL"]
        with httpx.Client(
            base_url=base_url,
            headers={"Secret-Key": found["DATATURE_SECRET_KEY"]},
            timeout=120.0,
            trust_env=False,
        ) as admin:
            yield Server(
                base_url=base_url,
                secret_key=found["DATATURE_SECRET_KEY"],
                project_id=found["DATATURE_PROJECT_ID"],
                deployment_id=deployment.group(1),
                latency=latency,
                pid=proc.pid,
                _admin=admin,
            )
    finally:
        stop_process(proc)


def png_data_url(size: int = 16) -> str:
    """A tiny PNG (a white square on black) as a data: URL the server can gather."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).rectangle((4, 4, size - 5, size - 5), fill=255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# ------------------------------------------------------------------- the reference SDK


def reference_project(base_url: str, secret_key: str, project_id: str) -> Any:
    """`datature.nexus.Client(key).get_project(id)` aimed at the local server.

    The reference reads `DATATURE_API_BASE_URL` once, when `datature.nexus` is first
    imported (it is the default value of `Client`'s `endpoint` parameter), so the URL
    is passed explicitly; the variable is set as well for code that reads it later.
    Its `requests.Session` keeps 10 connections per host and logs a warning for each
    extra one it discards; those warnings are silenced here (the discarding is not).
    """
    import logging

    os.environ["DATATURE_API_BASE_URL"] = base_url
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    from datature.nexus import Client

    return Client(secret_key, endpoint=base_url).get_project(project_id)


# ------------------------------------------------------------------------------ timing


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def alternate(
    contenders: Mapping[str, Callable[[], T]],
    *,
    rounds: int,
    budget: float,
) -> dict[str, list[T]]:
    """Run one measurement of each contender per round, rotating who goes first.

    Stops after `rounds` rounds, or after the round during which `budget` seconds
    ran out (so every contender has at least one sample and the same count).
    """
    names = list(contenders)
    results: dict[str, list[T]] = {name: [] for name in names}
    deadline = time.monotonic() + budget
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
        if time.monotonic() > deadline:
            break
    return results


@dataclass(frozen=True)
class Timing:
    """Wall-clock and this process's CPU seconds (all its threads) of one measurement."""

    wall: float
    cpu: float

    def per(self, count: int) -> Timing:
        return Timing(self.wall / count, self.cpu / count)


class Stopwatch:
    """`with Stopwatch() as watch: ...`, then `watch.timing`."""

    timing: Timing

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timing = Timing(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    On Linux it is `VmHWM` from /proc/self/status: the high-water mark of this
    process's own memory, which starts afresh at `exec`. (`getrusage`'s `ru_maxrss` is
    not: a child started by a large parent reports at least the parent's size.)
    Elsewhere, `ru_maxrss` from the stdlib `resource` module.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_child(module: str, args: Sequence[str], *, timeout: float) -> dict[str, Any] | None:
    """Run `python -m module --child ARGS` in a fresh interpreter; its JSON result, or None.

    The child writes its result to the file named by `--out`; its own stdout and
    stderr are discarded (the reference SDK draws progress bars there). None means it
    did not finish within `timeout` seconds and was killed.
    """
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "result.json")
        command = [sys.executable, "-m", module, "--child", *args, "--out", out]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            return None
        if proc.returncode != 0 or not os.path.exists(out):
            tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{module} child failed ({proc.returncode}): {' | '.join(tail)}")
        with open(out, encoding="utf-8") as result:
            data: dict[str, Any] = json.load(result)
        return data


# ------------------------------------------------------------------------------ report


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `TimeoutError` in the main thread if the block runs longer than `seconds`.

    A backstop for the whole run (SIGALRM, POSIX): whatever hangs, the exception
    unwinds through `serve()`, which stops the server process. A no-op elsewhere.
    """
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the benchmark run exceeded its time limit of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fmt_seconds(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float) -> str:
    return "n/a" if ratio != ratio else f"{ratio:.2f}x"


@dataclass
class Row:
    """One measured line: a contender's median result (and how it compares)."""

    contender: str
    result: str
    detail: str = ""


@dataclass
class Target:
    """A goal of issue #7 and whether this run met it."""

    text: str
    met: bool
    measured: str


@dataclass
class Report:
    """The outcome of one comparison."""

    title: str
    setup: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def render(reports: Sequence[Report], *, command: str, elapsed: float | None = None) -> str:
    """The markdown: machine, command, one results table, one targets table."""
    lines = ["### Machine", ""]
    lines += [f"- {name}: {value}" for name, value in machine_info()]
    lines += ["", f"Command: `{command}`" + (f" ({elapsed:.0f} s)" if elapsed else ""), ""]
    lines += ["### Results", ""]
    lines += ["| comparison | contender | median | detail |", "|---|---|---|---|"]
    for report in reports:
        title = f"**{report.title}**"
        for row in report.rows:
            lines.append(f"| {title} | {row.contender} | {row.result} | {row.detail} |")
            title = ""
    lines += ["", "### Setups", ""]
    lines += [f"- **{report.title}**: {report.setup}" for report in reports]
    lines += [
        "",
        "### Targets",
        "",
        "| comparison | target | measured | met |",
        "|---|---|---|---|",
    ]
    for report in reports:
        for target in report.targets:
            mark = "yes" if target.met else "**no**"
            lines.append(f"| {report.title} | {target.text} | {target.measured} | {mark} |")
    return "\n".join(lines)


def bench_main(run: Callable[[bool], Report], argv: Sequence[str] | None = None) -> None:
    """The command line of one `bench_*.py`: `[--quick]`, prints its table."""
    parser = argparse.ArgumentParser(description=(run.__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a quick look)")
    args = parser.parse_args(argv)
    pin_client()
    started = time.monotonic()
    with time_limit(600.0):
        report = run(args.quick)
    module = run.__module__
    if module == "__main__":  # run as `python -m benchmarks.bench_...`
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else module
    command = f"python -m {module}" + (" --quick" if args.quick else "")
    print(render([report], command=command, elapsed=time.monotonic() - started))
