"""The server's own backfill worker: keepers become searchable while the server runs."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from index.db import open_catalog
from index.repo import backfill as q
from index.vectors import VectorIndex
from tests.api.conftest import build_catalog
from tests.api.tiny_encoder import TinyEncoder


def test_serve_runs_a_worker_whose_keepers_are_searchable_at_once(tmp_path: Path) -> None:
    enc = build_catalog(tmp_path, n=6)
    settings = Settings(home=tmp_path, backfill_generate="tests.generation.backfill_fakes:tiny_pipeline",
                        worker_poll_s=0.05, worker_heartbeat_s=1.0)
    factory = open_catalog(settings.resolved_database_url)
    job, _ = q.enqueue(factory, "waltz", "a waltz for accordion", {"n": 2}, recent_window_s=0)
    app = create_app(settings, encoder=enc)
    state = app.state.tunescope
    with TestClient(app):
        done = threading.Event()
        for _ in range(600):  # the worker polls every 50 ms; give a loaded machine 30 s
            p = q.job_progress(factory, job.id)
            if p.status == "done":
                done.set()
                break
            done.wait(0.05)
        assert done.is_set(), p
        served = set(state.service.index.ids().tolist())
        assert set(p.result_track_ids) <= served and len(p.result_track_ids) == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("backfill-")]
    saved = VectorIndex.load(settings.index_dir, enc.id)
    assert saved is not None and set(p.result_track_ids) <= set(saved.ids().tolist())
    factory.kw["bind"].dispose()


def test_no_pipeline_no_worker(tmp_path: Path) -> None:
    enc = build_catalog(tmp_path, n=2)
    with TestClient(create_app(Settings(home=tmp_path), encoder=TinyEncoder())):
        assert not [t for t in threading.enumerate() if t.name.startswith("backfill-")]
    assert enc.dim == 32
