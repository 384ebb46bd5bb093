"""Schemathesis over every operation of the real server, with every check, stateful links too.

The server is a real uvicorn (with the JSON-error protocol ``tunescope serve`` uses) over a
throwaway catalog built for this test: the run uploads and DELETEs tracks, so it must never
point at a catalog anyone cares about. The run is the ``st`` command line, exactly as a person
would run it; any failure of any check fails the build and prints schemathesis' report.

``TUNESCOPE_FUZZ_EXAMPLES`` sets the examples per operation (default 50 in CI;
``TUNESCOPE_FUZZ_EXAMPLES=100 TUNESCOPE_FUZZ_SECONDS=1800`` is the strength the hardening issue
asks for, about 4-15 minutes here), ``TUNESCOPE_FUZZ_SECONDS`` the time budget of the whole run
(default 600: CI stays bounded).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from api.server import JsonErrorHttpProtocol
from api.settings import Settings
from tests.api.conftest import API_KEY, build_catalog, serve_in_thread, tiny_prior
from tests.api.tiny_encoder import TinyEncoder

EXAMPLES = int(os.environ.get("TUNESCOPE_FUZZ_EXAMPLES", "50"))
BUDGET_S = int(os.environ.get("TUNESCOPE_FUZZ_SECONDS", "600"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz-catalog")
    encoder = TinyEncoder()
    build_catalog(home, n=12)
    # Backfill configured, so weak searches answer with a queued (or "limited") job; no worker
    # runs, so the catalog changes only through the fuzzer's own writes.
    settings = Settings(home=home, api_key=API_KEY,
                        backfill_generate="tests.generation.backfill_fakes:tiny_pipeline",
                        backfill_in_process=False)
    app = create_app(settings, encoder=encoder, prior=tiny_prior(encoder, mean_head=True))
    with serve_in_thread(app, http=JsonErrorHttpProtocol) as url:
        yield url


def test_the_server_answers_even_its_parser_errors_in_json(fuzz_server: str) -> None:
    """A URL too long for the HTTP parser never reaches the app; it is still our JSON."""
    host, port = fuzz_server.removeprefix("http://").split(":")
    for n in (100_000, 1_000_000):
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(f"GET /v1/search?q={'a' * n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 4"), head[:200]
        assert b"content-type: application/json" in head.lower()
        assert json.loads(body)["error"] and json.loads(body)["detail"]


def test_schemathesis_finds_nothing(fuzz_server: str, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis is not installed (it is in the dev extra)")
    config = Path(__file__).resolve().parents[2] / "schemathesis.toml"
    cmd = [st, "--no-color", "--config-file", str(config), "run", f"{fuzz_server}/openapi.json",
           "--checks", "all",
           "--max-examples", str(EXAMPLES), "--seed", "0", "--max-time", str(BUDGET_S),
           "--header", f"X-API-Key: {API_KEY}", "--request-timeout", "30",
           "--suppress-health-check", "all",
           "--report", "junit", "--report-dir", str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=BUDGET_S + 300,
                         env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    report = run.stdout[-20000:] + run.stderr[-5000:]
    assert run.returncode == 0, report
    assert "No issues found" in run.stdout or "passed" in run.stdout, report
