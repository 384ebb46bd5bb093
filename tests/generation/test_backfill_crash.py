"""SIGKILL real ``tunescope worker`` processes (two at a time) at random points of 10 jobs,
restart, repeat.

The kills land anywhere: during generation (random sleeps inside ``generate_fn``), right after
a keeper's audio reached the store, inside the keeper's transaction after its rows were
flushed, and at random wall-clock moments chosen by this test. Afterwards: no partial track,
no duplicate per (job, candidate), every job done or failed with a reason.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from index.models import BackfillJob, Embedding, Track, TrackProvenance
from index.repo import backfill as q
from index.store import AudioStore

REPO = Path(__file__).resolve().parents[2]
LEASE_S = 1.0
N_JOBS = 10


def _worker(env: dict[str, str], *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "api.cli", "worker", "--generate",
           "tests.generation.backfill_fakes:from_settings", "--no-index", "--lease", str(LEASE_S),
           "--heartbeat", "0.2", "--poll", "0.1", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _pending(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count(BackfillJob.id)).where(
            BackfillJob.status.in_(("queued", "running")))) or 0


def _check_catalog(factory: sessionmaker[Session], store: AudioStore, jobs: dict[int, int]) -> dict:
    with factory() as s:
        tracks = s.scalars(select(Track)).all()
        provs = s.scalars(select(TrackProvenance)).all()
        emb = s.execute(select(Embedding.track_id, func.count()).group_by(Embedding.track_id)).all()
        rows = s.scalars(select(BackfillJob)).all()
    by_track = {p.track_id: p for p in provs}
    assert {t.id for t in tracks} == set(by_track), "a track without provenance or the reverse"
    assert dict(emb) == {t.id: 1 for t in tracks}, "a track without exactly one embedding"
    keys = [(p.job_id, p.candidate_index) for p in provs]
    assert len(keys) == len(set(keys)), "a candidate stored twice"
    assert all(t.origin == "generated" and store.exists(t.audio_path) for t in tracks)
    for job in rows:
        assert job.status in ("done", "failed"), f"job {job.id} left {job.status}"
        stored = sorted(p.track_id for p in provs if p.job_id == job.id)
        if job.status == "done":
            assert sorted(job.result_track_ids) == stored and len(stored) == jobs[job.id]
        else:
            assert job.error, f"job {job.id} failed without a reason"
    blobs = sum(1 for _ in Path(store.root).rglob("*.wav"))
    return {"tracks": len(tracks), "orphan_blobs": blobs - len({t.audio_path for t in tracks}),
            "done": sum(j.status == "done" for j in rows),
            "failed": sum(j.status == "failed" for j in rows),
            "reasons": sorted({(j.error or "").split(":")[0] for j in rows if j.status == "failed"})}


@pytest.mark.slow
def test_sigkilled_workers_leave_no_partial_and_no_duplicate_track(
        db_url: str, factory: sessionmaker[Session], tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = AudioStore(home / "audio")
    jobs: dict[int, int] = {}
    for i in range(N_JOBS):
        query = "explode on purpose" if i == 7 else f"tune number {i}"
        job, _ = q.enqueue(factory, query, query, {"n": 3 + i % 3}, recent_window_s=0,
                           max_attempts=6)
        jobs[job.id] = 3 + i % 3
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNESCOPE_HOME": str(home),
           "TUNESCOPE_DATABASE_URL": db_url, "TS_FAKE_SLEEP_MAX": "0.25",
           "TS_FAKE_KILL_AFTER_BLOB": "0.12", "TS_FAKE_KILL_BEFORE_COMMIT": "0.12"}
    rng = random.Random(17)
    kills = {"by_test": 0, "self": 0, "exited": 0}
    for round_ in range(16):
        if not _pending(factory):
            break
        # Two workers at once: claims race for real, and each dies at its own moment.
        procs = [_worker({**env, "TS_FAKE_SEED": f"{round_}{w}"}) for w in range(2)]
        deadlines = [time.monotonic() + rng.uniform(1.0, 4.0) for _ in procs]
        for proc, deadline in zip(procs, deadlines, strict=True):
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills["by_test"] += 1
            else:
                kills["self" if proc.returncode == -signal.SIGKILL else "exited"] += 1
                assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read()
    # Restart clean workers until the queue drains (killed jobs' leases must run out first).
    for _ in range(30):
        if not _pending(factory):
            break
        clean = {k: v for k, v in env.items() if not k.startswith("TS_FAKE_KILL")}
        proc = _worker(clean, "--exit-when-idle")
        assert proc.wait(120) == 0, proc.stderr.read()
        time.sleep(LEASE_S)
    outcome = _check_catalog(factory, store, jobs)
    print(f"\ncrash test ({db_url.split(':')[0]}): kills {kills}, outcome {outcome}")
    assert kills["by_test"] + kills["self"] >= 5, kills
    assert outcome["failed"] >= 1 and "RuntimeError" in outcome["reasons"]
