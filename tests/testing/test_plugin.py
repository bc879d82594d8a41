"""The pytest plugin, used as users use it: a user-style test file in a fresh pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_SUITE = Path(__file__).with_name("user_suite.py")
MANUAL_SUITE = Path(__file__).with_name("manual_suite.py")


def test_a_user_suite_passes_on_both_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE.read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=240)
    result.assert_outcomes(passed=7)
    for backend in ("asyncio", "trio"):
        result.stdout.fnmatch_lines([f"*test_a_job_delivers_every_item?{backend}? PASSED*"])


def test_a_manual_clock_suite_skips_days(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_manual=MANUAL_SUITE.read_text())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=240)
    result.assert_outcomes(passed=2)


def test_without_the_server_extra_the_plugin_adds_nothing() -> None:
    # Block Starlette's import, as if the server extra were not installed.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'starlette':\n"
        "            raise ModuleNotFoundError(name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import nexus_async.testing as t\n"
        "print(sorted(n for n in vars(t) if n.startswith('nexus')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
