"""`nexus-async serve` takes every option of LocalNexus: flags from ServerSettings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import attrs
import httpx
import pytest

from nexus_async import AsyncClient
from nexus_async.cli import main
from nexus_async.cli._app import _parser
from nexus_async.cli._serve import _settings
from nexus_async.server import ServerSettings

from ..server.helpers import png_bytes

PREDICTOR = '''
import os
from pathlib import Path


class Marked:
    """Predicts one fixed box and notes each call in $MARK_FILE."""

    def predict(self, image):
        with Path(os.environ["MARK_FILE"]).open("a") as out:
            out.write(f"{image.size[0]}x{image.size[1]}\\n")
        return [{"annotationId": 0, "tag": {"id": 7, "name": "custom"}, "confidence": 0.5,
                 "boundType": "rectangle",
                 "bound": [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]}]


def make():
    return Marked()
'''


def parse(*argv: str) -> ServerSettings:
    return _settings(_parser().parse_args(["serve", *argv]))


def test_every_setting_is_a_serve_flag() -> None:
    args = _parser().parse_args(["serve"])
    names = set(vars(args)) - {"command", "run", "predictor_spec"}
    # The manual clock is left out: serve has no way to move it.
    assert names | {"predictor", "clock"} == {field.name for field in attrs.fields(ServerSettings)}
    assert parse() == ServerSettings()


def test_flags_become_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models.py").write_text(PREDICTOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = parse(
        "--static-dir",
        str(tmp_path),
        "--item-concurrency",
        "3",
        "--job-concurrency",
        "2",
        "--no-allow-private-addresses",
        "--predictor",
        "models:make",
    )
    assert type(settings.predictor).__name__ == "Marked"
    assert attrs.evolve(settings, predictor=None) == ServerSettings(
        static_dir=tmp_path, item_concurrency=3, job_concurrency=2, allow_private_addresses=False
    )
    assert type(parse("--predictor", "models:Marked").predictor).__name__ == "Marked"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--item-concurrency", "0"], "`item_concurrency` must be an integer >= 1"),
        (["--static-dir", "/no/such/folder"], "`static_dir` must be an existing directory"),
        (["--predictor", "no_such_module_here:make"], "--predictor no_such_module_here:make"),
        (["--predictor", "os.path"], "--predictor must be module:callable"),
        (["--predictor", "os:sep"], "neither a predictor nor callable"),
        (["--predictor", "builtins:object"], "did not return an object with predict(image)"),
    ],
)
def test_bad_flags_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_other_commands_do_not_import_the_server() -> None:
    code = (
        "import sys\nfrom nexus_async.cli import main\n"
        "assert main(['jobs', 'list', '--help']) == 0\n"
        "assert 'nexus_async.server' not in sys.modules, 'server imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)


def test_serve_runs_jobs_with_the_flags_it_was_given(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "a.png").write_bytes(png_bytes())
    (tmp_path / "models.py").write_text(PREDICTOR)
    mark = tmp_path / "calls.txt"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "MARK_FILE": str(mark),
    }
    argv = ["--static-dir", str(static), "--item-concurrency", "1", "--predictor", "models:make"]
    process = subprocess.Popen(
        [sys.executable, "-m", "nexus_async.cli", "serve", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "NEXUS_DEPLOYMENT_ID" not in exports:
            line = process.stdout.readline()
            if not line:
                break
            if line.strip().startswith("export "):
                key, _, value = line.strip().removeprefix("export ").partition("=")
                exports[key] = value
        base = exports["DATATURE_API_BASE_URL"]
        assert httpx.get(f"{base}/static/a.png").content == png_bytes()

        async def one_job() -> None:
            async with AsyncClient(exports["DATATURE_SECRET_KEY"], base_url=base) as client:
                batch = client.get_project(exports["DATATURE_PROJECT_ID"]).batch
                dataset = await batch.datasets.create_from_items("s", [f"{base}/static/a.png"])
                dataset = await batch.datasets.wait_until_done(dataset.id, timeout=30)
                job = await batch.jobs.create(
                    "j",
                    {
                        "dataset_id": dataset.id,
                        "webhook_id": exports["NEXUS_WEBHOOK_ID"],
                        "deployment_id": exports["NEXUS_DEPLOYMENT_ID"],
                    },
                )
                done = await batch.jobs.wait_until_done(job.id, timeout=30)
                assert done.status.items.delivered == 1

        anyio.run(one_job)
        assert mark.read_text().splitlines() == ["16x16"]  # the given predictor ran, once
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
        assert "the receiver verified 1 deliveries" in out
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
