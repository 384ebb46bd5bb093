"""The backfill queue against real, migrated catalogs (SQLite; PostgreSQL when reachable)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.orm import Session, sessionmaker

from index.db import alembic_config, create_engine_for, migrate
from index.errors import CatalogError
from index.repo import backfill as q

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _enqueue(factory, key: str = "waltz", now: float = 0.0, **kw):
    kw.setdefault("recent_window_s", 600)
    return q.enqueue(factory, key, f"a {key}", {"n": 4}, now=at(now), **kw)


def test_the_migration_adds_the_tables_and_downgrades_cleanly(db_url: str) -> None:
    engine = create_engine_for(db_url)
    migrate(engine)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert {"backfill_jobs", "track_provenance"} <= tables
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_initial")
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert "backfill_jobs" not in tables and "track_provenance" not in tables and "tracks" in tables
    migrate(engine)  # and up again
    engine.dispose()


def test_enqueue_dedups_pending_and_recent_jobs(factory: sessionmaker[Session]) -> None:
    job, created = _enqueue(factory)
    assert created and job.status == "queued" and job.attempts == 0 and job.query == "a waltz"
    again, created = _enqueue(factory, now=5)
    assert not created and again.id == job.id
    other, created = _enqueue(factory, key="reel", now=5)
    assert created and other.id != job.id
    claimed = q.claim(factory, "w1", 30, now=at(10))
    assert claimed is not None and claimed.id == job.id
    assert _enqueue(factory, now=11)[0].id == job.id  # running counts as pending
    assert q.complete(factory, claimed, [7], now=at(20))
    assert _enqueue(factory, now=20 + 599)[0].id == job.id  # answered recently
    later, created = _enqueue(factory, now=20 + 601)
    assert created and later.id not in (job.id, other.id)


def test_a_failed_job_does_not_block_asking_again(factory: sessionmaker[Session]) -> None:
    job, _ = _enqueue(factory, max_attempts=1)
    claimed = q.claim(factory, "w1", 30, now=at(1))
    assert q.fail(factory, claimed, "generator exploded", now=at(2)) == "failed"
    again, created = _enqueue(factory, now=3)
    assert created and again.id != job.id


def test_enqueue_refuses_bad_limits(factory: sessionmaker[Session]) -> None:
    with pytest.raises(CatalogError, match="max_attempts"):
        _enqueue(factory, max_attempts=0)


def test_concurrent_enqueues_of_one_request_queue_one_job(factory: sessionmaker[Session]) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def go() -> None:
        barrier.wait()
        job, created = q.enqueue(factory, "same", "same", {}, recent_window_s=60)
        with lock:
            results.append((job.id, created))

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n
    assert len({jid for jid, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_claim_takes_the_oldest_and_spends_an_attempt(factory: sessionmaker[Session]) -> None:
    a, _ = _enqueue(factory, "a", now=0)
    b, _ = _enqueue(factory, "b", now=1)
    first = q.claim(factory, "w1", 30, now=at(2))
    second = q.claim(factory, "w2", 30, now=at(2))
    assert (first.id, second.id) == (a.id, b.id)
    assert first.status == "running" and first.attempts == 1 and first.lease_owner == "w1"
    assert q._aware(first.lease_expires_at) == at(32)
    assert q.claim(factory, "w3", 30, now=at(3)) is None


def test_an_expired_lease_is_reclaimed_and_fences_the_old_worker(
        factory: sessionmaker[Session]) -> None:
    job, _ = _enqueue(factory)
    w1 = q.claim(factory, "w1", 10, now=at(0))
    assert q.heartbeat(factory, w1, lease_s=10, progress={"candidates": 1}, now=at(5))
    assert q.claim(factory, "w2", 10, now=at(14)) is None  # renewed until 15
    w2 = q.claim(factory, "w2", 10, now=at(16))  # w1 was killed: its lease ran out
    assert w2 is not None and w2.id == job.id and w2.attempts == 2
    # The killed worker's late calls are refused: the job is w2's now.
    assert not q.heartbeat(factory, w1, lease_s=10, now=at(17))
    assert not q.complete(factory, w1, [1], now=at(17))
    assert q.fail(factory, w1, "late", now=at(17)) is None
    assert q.complete(factory, w2, [3, 4], now=at(18))
    p = q.job_progress(factory, job.id)
    assert p.status == "done" and p.result_track_ids == [3, 4] and p.progress == {"candidates": 1}
    assert p.finished_at == at(18) and p.error is None


def test_fail_retries_until_max_attempts_then_keeps_the_reason(
        factory: sessionmaker[Session]) -> None:
    job, _ = _enqueue(factory, max_attempts=2)
    w = q.claim(factory, "w", 30, now=at(0))
    assert q.fail(factory, w, "first reason", now=at(1)) == "queued"
    assert q.get_job(factory, job.id).error == "first reason"
    w = q.claim(factory, "w", 30, now=at(2))
    assert w.attempts == 2
    assert q.fail(factory, w, "second reason", now=at(3)) == "failed"
    p = q.job_progress(factory, job.id)
    assert (p.status, p.error, p.attempts) == ("failed", "second reason", 2)
    assert q.claim(factory, "w", 30, now=at(4)) is None


def test_a_job_whose_last_lease_expires_fails_with_a_reason(factory: sessionmaker[Session]) -> None:
    job, _ = _enqueue(factory, max_attempts=2)
    w = q.claim(factory, "w1", 10, now=at(0))
    assert q.fail(factory, w, "out of memory", now=at(1)) == "queued"
    assert q.claim(factory, "w2", 10, now=at(2)).attempts == 2
    # w2 is SIGKILLed; nobody heartbeats. The next claimer fails the job instead of looping.
    assert q.claim(factory, "w3", 10, now=at(30)) is None
    p = q.job_progress(factory, job.id)
    assert p.status == "failed" and p.finished_at == at(30)
    assert "lease expired" in p.error and "w2" in p.error and "out of memory" in p.error


def test_release_gives_the_job_back_without_spending_an_attempt(
        factory: sessionmaker[Session]) -> None:
    _enqueue(factory, max_attempts=1)
    w = q.claim(factory, "w1", 30, now=at(0))
    assert q.release(factory, w, now=at(1))
    w = q.claim(factory, "w2", 30, now=at(2))
    assert w is not None and w.attempts == 1


def test_max_running_limits_concurrent_jobs(factory: sessionmaker[Session]) -> None:
    for key in "abc":
        _enqueue(factory, key)
    assert q.claim(factory, "w1", 10, max_running=2, now=at(0)) is not None
    assert q.claim(factory, "w2", 10, max_running=2, now=at(0)) is not None
    assert q.claim(factory, "w3", 10, max_running=2, now=at(1)) is None
    assert q.claim(factory, "w3", 10, max_running=2, now=at(11)) is not None  # leases ran out


def test_concurrent_claimers_take_each_job_exactly_once(factory: sessionmaker[Session]) -> None:
    n_jobs, n_workers = 24, 6
    ids = {_enqueue(factory, f"k{i}", now=i)[0].id for i in range(n_jobs)}
    barrier = threading.Barrier(n_workers)
    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            barrier.wait()
            while (job := q.claim(factory, name, 300)) is not None:
                with lock:
                    claims.append((name, job.id))
                assert q.complete(factory, job, [])
        except BaseException as e:  # surfaced below: a thread's assert is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    counts = Counter(jid for _, jid in claims)
    assert set(counts) == ids and set(counts.values()) == {1}
    assert all(q.get_job(factory, i).status == "done" for i in ids)


def test_the_sqlite_path_holds_the_write_lock_from_its_first_read(tmp_path) -> None:
    """What makes SQLite claims single-writer: another writer is locked out from the start."""
    import sqlite3

    from index.db import open_catalog

    path = tmp_path / "c.db"
    factory = open_catalog(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with q._serialised(factory):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # free again once the unit of work ended
    other.execute("ROLLBACK")
    other.close()
    factory.kw["bind"].dispose()


def test_request_keys_ignore_case_and_spacing_but_not_options() -> None:
    a = q.request_key("A  Waltz for\taccordion", {"n": 4, "duration": 20})
    assert a == q.request_key("a waltz for accordion", {"duration": 20, "n": 4})
    assert a != q.request_key("a waltz for accordion", {"duration": 30, "n": 4})
    assert q.key_hash(a) != q.key_hash(q.request_key("a waltz"))
