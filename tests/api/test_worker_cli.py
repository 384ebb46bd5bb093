"""``tunescope worker`` as a real process: SIGTERM gives the job back, a rerun finishes it and
indexes the keepers through the database sync path; a missing pipeline is one clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from index.repo import backfill as q
from index.vectors import VectorIndex
from tests.generation.backfill_fakes import DIM, ENCODER_ID

ROOT = Path(__file__).resolve().parents[2]


def _cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", "worker", "--generate",
            "tests.generation.backfill_fakes:from_settings", "--poll", "0.05", *extra]


def test_sigterm_gives_the_job_back_and_a_rerun_finishes_and_indexes_it(
        db_url: str, factory: sessionmaker[Session], tmp_path: Path) -> None:
    job, _ = q.enqueue(factory, "slow", "a slow hornpipe", {"n": 6}, recent_window_s=0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNESCOPE_HOME": str(tmp_path / "home"),
           "TUNESCOPE_DATABASE_URL": db_url, "TS_FAKE_SLEEP_MAX": "0.8"}
    proc = subprocess.Popen(_cmd("--no-index"), cwd=ROOT, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stderr:  # the first keeper is stored: the job is mid-way
            if line.startswith("stored track"):
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(60) == 0, rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SIGTERM: stopping after the current candidate" in rest
    assert f"job {job.id} attempt 1/3: released" in rest and "1 given back" in rest
    p = q.job_progress(factory, job.id)
    assert p.status == "queued" and p.attempts == 0 and 1 <= len(p.stored_track_ids) < 6

    env["TS_FAKE_SLEEP_MAX"] = "0"
    r = subprocess.run(_cmd("--exit-when-idle"), cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    p = q.job_progress(factory, job.id)
    assert p.status == "done" and len(p.result_track_ids) == 6
    assert f"job {job.id} attempt 1/3: done" in r.stderr
    vi = VectorIndex.load(tmp_path / "home" / "indexes", ENCODER_ID)
    assert vi is not None and sorted(vi.ids().tolist()) == sorted(p.result_track_ids)
    assert VectorIndex.open(tmp_path / "home" / "indexes", ENCODER_ID, DIM, factory).count == 6


def test_no_pipeline_configured_is_one_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNESCOPE_HOME": str(tmp_path)}
    env.pop("TUNESCOPE_BACKFILL_GENERATE", None)
    r = subprocess.run([sys.executable, "-m", "api.cli", "worker"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "TUNESCOPE_BACKFILL_GENERATE" in r.stderr, r.stderr
