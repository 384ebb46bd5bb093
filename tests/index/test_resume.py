"""SIGKILL in the middle of an ingest, then run again: nothing partial, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from index.db import create_engine_for, session_scope
from index.ingest import ingest
from index.models import IngestRun, Track

REPO = Path(__file__).resolve().parents[2]

# Ingests with batch size 4; every batch after the first sleeps inside its open transaction,
# so the kill lands while a batch is half done (its audio already copied to the store).
DRIVER = """
import sys, time
from pathlib import Path
from index.db import open_catalog
from index.ingest import ingest
from index.store import AudioStore
url, src, store = sys.argv[1:4]
batches = []
def slow(session, tracks):
    batches.append(len(tracks))
    if len(batches) > 1:
        time.sleep(0.4)
ingest([Path(src)], open_catalog(url), AudioStore(store), batch_size=4, min_duration_s=0.5,
       on_batch=slow, progress=False)
"""


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count(Track.id))).scalar_one()


def test_sigkill_then_rerun_ingests_everything_exactly_once(db_url: str, factory, store,
                                                           tone_writer, tmp_path: Path,
                                                           rng: np.random.Generator) -> None:
    src = tmp_path / "many"
    for i in range(40):
        tone_writer(src / f"t{i:02d}.wav", (200.0 + 17 * i,), 1.0, 8000, noise=0.01, rng=rng)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, db_url, str(src), str(store.root)],
                            cwd=REPO, env=env, stderr=subprocess.PIPE)
    engine = create_engine_for(db_url)
    try:
        deadline = time.monotonic() + 30
        while _count(engine) < 4:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "first batch never committed"
            time.sleep(0.05)
        time.sleep(0.2)  # well inside the second batch's open transaction
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        committed = _count(engine)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
    assert committed % 4 == 0 and 4 <= committed < 40  # whole batches only
    with session_scope(factory) as session:
        (dead,) = session.scalars(select(IngestRun)).all()
        assert dead.status == "running" and dead.pid == proc.pid

    summary = ingest([src], factory, store, batch_size=4, min_duration_s=0.5, progress=False)

    assert summary.interrupted_runs == [dead.id]
    assert (summary.ingested, summary.duplicates) == (40 - committed, committed)
    assert summary.quarantined == []
    with session_scope(factory) as session:
        tracks = session.scalars(select(Track)).all()
        statuses = dict(session.execute(select(IngestRun.id, IngestRun.status)).all())
    assert sorted(Path(t.source_path).name for t in tracks) == [f"t{i:02d}.wav" for i in range(40)]
    assert len({t.content_hash for t in tracks}) == 40
    assert all(store.exists(t.audio_path) for t in tracks)
    assert statuses == {dead.id: "interrupted", summary.run_id: "done"}
    stored = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(stored) == 40 and not [p for p in stored if p.suffix == ".tmp"]
