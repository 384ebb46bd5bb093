"""Storing keepers and the worker loop, against real catalogs (SQLite; PostgreSQL if reachable)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from generation.backfill.worker import Keeper, Report, run_worker, start_worker_thread
from index.errors import CatalogError, DecodeError
from index.models import Embedding, Track, TrackProvenance
from index.repo import backfill as q
from index.repo.tracks import delete_track
from index.store import AudioStore
from index.vectors import VectorIndex
from tests.generation.backfill_fakes import DIM, ENCODER_ID, keeper, make_generate


def _counts(factory) -> tuple[int, int, int]:
    with factory() as s:
        return (s.scalar(select(func.count(Track.id))), s.scalar(select(func.count(Embedding.id))),
                s.scalar(select(func.count(TrackProvenance.id))))


def _job(factory, query: str = "a waltz for accordion", **kw):
    request = {"n": kw.pop("n", 3)}
    job, _ = q.enqueue(factory, query, query, request, recent_window_s=0, **kw)
    return job


def _store(factory, store, job, k: Keeper) -> int:
    return q.store_generated(factory, store, job, k.audio, k.metadata, k.embedding, ENCODER_ID,
                             k.provenance)


def _run(factory, store, generate=None, **kw):
    kw.setdefault("exit_when_idle", True)
    return run_worker(factory, store, generate or make_generate(), worker_id="w", lease_s=30,
                      heartbeat_s=5, stop_event=threading.Event(), encoder_id=ENCODER_ID, **kw)


def test_a_keeper_is_stored_with_embedding_and_provenance_once(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory)
    k = keeper(job.query, 0)
    tid = _store(factory, store, job, k)
    assert _store(factory, store, job, k) == tid  # a retry gets the same track back
    assert _counts(factory) == (1, 1, 1)
    with factory() as s:
        t = s.get(Track, tid)
        assert t.origin == "generated" and t.title == k.metadata["title"] and t.mode == "major"
        assert t.tags == ["generated", "sine"] and t.extra == {"sine_hz": k.metadata["sine_hz"]}
        assert t.provenance["job_id"] == job.id and t.sample_rate == 8000 and t.duration_s == 1.0
        assert store.exists(t.audio_path)
        p = s.scalars(select(TrackProvenance)).one()
        assert (p.track_id, p.job_id, p.candidate_index, p.generator_id) == (tid, job.id, 0, "fake-sine")
        prior = np.frombuffer(p.prior_samples, "<f4").reshape(p.prior_count, p.prior_dim)
        np.testing.assert_array_equal(prior, k.provenance.prior_samples)
        assert p.scores == k.provenance.scores and p.neighbour_track_ids == [1, 2]
        e = s.scalars(select(Embedding)).one()
        np.testing.assert_allclose(np.frombuffer(e.vector, "<f4"), k.embedding)


def test_a_failed_store_leaves_no_rows_only_a_harmless_blob(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory)
    k = keeper(job.query, 0)
    bad = Keeper(k.audio, k.metadata, np.full(DIM, np.nan, np.float32), k.provenance)
    with pytest.raises(CatalogError, match="finite"):
        _store(factory, store, job, bad)
    assert _counts(factory) == (0, 0, 0)
    assert len([p for p in Path(store.root).rglob("*.wav")]) == 1  # the orphan blob
    tid = _store(factory, store, job, k)  # the retry reuses it
    assert _counts(factory) == (1, 1, 1) and q.stored_candidate(factory, job.id, 0) == tid
    with pytest.raises(DecodeError):
        _store(factory, store, job, Keeper(b"not audio", {}, k.embedding, keeper(job.query, 1).provenance))
    assert _counts(factory) == (1, 1, 1)


def test_stored_keepers_reach_the_index_through_the_sync_path_and_delete_cascades(
        factory: sessionmaker[Session], store: AudioStore, tmp_path: Path) -> None:
    job = _job(factory)
    ids = [_store(factory, store, job, keeper(job.query, i)) for i in range(3)]
    vi = VectorIndex.open(tmp_path / "idx", ENCODER_ID, DIM, factory)
    assert sorted(vi.ids().tolist()) == sorted(ids)
    delete_track(factory, store, ids[0])
    assert _counts(factory) == (2, 2, 2)


def test_the_worker_runs_jobs_to_done_or_failed_with_a_reason(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    a = _job(factory, "a jig for fiddle")
    b = _job(factory, "a reel", n=2)
    bad = _job(factory, "explode please", max_attempts=2)
    stats = _run(factory, store)
    assert (stats.done, stats.retried, stats.failed, stats.stored) == (2, 1, 1, 5)
    pa, pb, pbad = (q.job_progress(factory, j.id) for j in (a, b, bad))
    assert pa.status == "done" and len(pa.result_track_ids) == 3
    assert pa.result_track_ids == pa.stored_track_ids and pa.progress["stored"] == 3
    assert pb.status == "done" and len(pb.result_track_ids) == 2
    assert pbad.status == "failed" and pbad.attempts == 2
    assert "RuntimeError" in pbad.error and "explode" in pbad.error
    assert _counts(factory) == (5, 5, 5)


def test_a_stop_gives_the_job_back_and_the_retry_adds_no_duplicate(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory, n=3)
    stop = threading.Event()
    inner = make_generate()

    def stop_after_first(j):
        for i, k in enumerate(inner(j)):
            if i == 1:
                stop.set()
            yield k

    stats = run_worker(factory, store, stop_after_first, worker_id="w1", lease_s=30,
                       heartbeat_s=5, stop_event=stop, encoder_id=ENCODER_ID)
    assert stats.released == 1
    p = q.job_progress(factory, job.id)
    assert p.status == "queued" and p.attempts == 0 and len(p.stored_track_ids) == 2
    _run(factory, store)
    p = q.job_progress(factory, job.id)
    assert p.status == "done" and len(p.result_track_ids) == 3 and _counts(factory) == (3, 3, 3)


def test_a_worker_that_lost_its_lease_does_not_finish_the_job(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory, n=2)
    inner = make_generate()
    thief: list = []

    def stalled(j):
        yield from inner(j)
        # This worker stalled past its lease; another one took the job meanwhile.
        thief.append(q.claim(factory, "thief", 30, now=q.utcnow() + q.dt.timedelta(seconds=60)))

    stats = _run(factory, store, stalled, max_jobs=1)
    assert stats.lost == 1 and thief[0] is not None and thief[0].id == job.id
    assert q.job_progress(factory, job.id).status == "running"
    for i in range(2):  # the thief's retry finds both candidates stored
        _store(factory, store, thief[0], keeper(job.query, i))
    assert q.complete(factory, thief[0], q.job_progress(factory, job.id).stored_track_ids)
    assert _counts(factory) == (2, 2, 2)


def test_the_heartbeat_renews_the_lease_while_generating(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory, n=1)
    inner = make_generate()
    renewed = []

    def slow(j):
        first = q._aware(q.get_job(factory, j.id).lease_expires_at)
        for _ in range(200):  # until a beat landed (each wait is one heartbeat period)
            if q._aware(q.get_job(factory, j.id).lease_expires_at) > first:
                renewed.append(True)
                break
            threading.Event().wait(0.05)
        yield from inner(j)

    run_worker(factory, store, slow, worker_id="w", lease_s=30, heartbeat_s=0.02,
               stop_event=threading.Event(), encoder_id=ENCODER_ID, exit_when_idle=True)
    assert renewed and q.job_progress(factory, job.id).status == "done"


def test_the_in_process_thread_mode(factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory, n=2)
    finished = threading.Event()
    stored: list[int] = []
    thread, stop = start_worker_thread(
        factory, store, make_generate(), worker_id="serve:1", lease_s=30, heartbeat_s=5,
        encoder_id=ENCODER_ID, poll_s=0.05, on_stored=lambda tid, k: stored.append(tid),
        on_outcome=lambda j, outcome: finished.set())
    assert finished.wait(60)
    stop.set()
    thread.join(60)
    assert not thread.is_alive()
    assert q.job_progress(factory, job.id).result_track_ids == stored and len(stored) == 2


def test_a_plain_function_that_raises_fails_the_attempt(factory: sessionmaker[Session],
                                                        store: AudioStore) -> None:
    job = _job(factory, max_attempts=1)

    def broken(j):
        raise ValueError("bad request")

    stats = _run(factory, store, broken)
    assert stats.failed == 1
    p = q.job_progress(factory, job.id)
    assert p.status == "failed" and p.error == "ValueError: bad request"
    assert p.progress["stage"] == "failed"


def test_keepers_may_come_as_a_list(factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory, n=2)
    stats = _run(factory, store, lambda j: [keeper(j.query, i) for i in range(2)])
    assert stats.done == 1 and len(q.job_progress(factory, job.id).result_track_ids) == 2


def test_reports_between_keepers_reach_the_job_progress_at_once(
        factory: sessionmaker[Session], store: AudioStore) -> None:
    job = _job(factory, n=2)
    inner = make_generate()
    seen: list[dict] = []

    def reporting(j):
        yield Report({"stage": "gating", "generated": 4, "stored": 99, "worker": "forged"})
        seen.append(q.job_progress(factory, j.id).progress)  # visible before any keeper
        for i, k in enumerate(inner(j)):
            yield k
            yield Report({"kept": i + 1, "rejected_by": {"melody": 1}})
        yield Report({"stage": "finished"})

    _run(factory, store, reporting)
    assert seen[0]["stage"] == "gating" and seen[0]["generated"] == 4
    assert seen[0]["stored"] == 0 and seen[0]["worker"] == "w"  # the worker's own keys are kept
    p = q.job_progress(factory, job.id)
    assert p.status == "done" and len(p.result_track_ids) == 2
    assert p.progress["stage"] == "done" and p.progress["stored"] == 2  # the worker has the last word
    assert (p.progress["kept"], p.progress["generated"], p.progress["rejected_by"]) == (2, 4, {"melody": 1})
