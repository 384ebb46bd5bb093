"""A broken environment gets one line that says what is wrong and what to do, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


@pytest.mark.parametrize(("env", "needle"), [
    ({"TUNESCOPE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
     "TUNESCOPE_DATABASE_URL"),
    # /proc refuses new folders even to root, where a chmod'ed folder would not.
    ({"TUNESCOPE_HOME": "/proc/tunescope-home"}, "set TUNESCOPE_HOME to a folder"),
])
def test_environment_errors_are_one_line(env: dict[str, str], needle: str) -> None:
    r = _run(env, "catalog", "stats")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
