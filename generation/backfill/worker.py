"""The backfill worker: claim a job, generate, store each keeper atomically, finish the job.

What generates is injected (``generate_fn(job) -> Iterable[Keeper]``: the generator, the
re-ranking and the novelty gate, wired by ``api``), so this loop is only about the queue's
guarantees:

- a job is held under a lease that a heartbeat thread renews while ``generate_fn`` runs; a
  worker that loses its lease (it stalled past it and another worker took the job) stops
  touching the job;
- each keeper is stored the moment it is yielded, in one transaction with its embedding and
  provenance (:func:`index.repo.backfill.store_generated`), idempotently per (job, candidate),
  so a retry after a crash never stores a candidate twice and the first track shows up before
  the job ends;
- an exception fails the attempt with its reason (retried until ``max_attempts``); a stop
  request (SIGTERM, server shutdown) gives the job back without spending an attempt; a
  SIGKILL leaves the lease to expire, and the job comes back to the queue by itself.

The same loop runs in a thread of ``tunescope serve`` (:func:`start_worker_thread`) or as the
main loop of ``tunescope worker`` processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.models import BackfillJob
from index.repo import backfill as queue
from index.repo.backfill import Provenance, SessionFactory
from index.store import AudioStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keeper:
    """A candidate that passed re-ranking and the novelty gate, ready to be stored.

    Attributes:
        audio: encoded audio (WAV bytes; any format ingestion accepts).
        metadata: track fields (title, tags, key, mode, meter, tempo_bpm, ensemble, ...).
        embedding: float32 ``[dim]`` L2-normalised audio embedding of ``audio``.
        provenance: how it was made; ``provenance.candidate_index`` must be stable across
            retries of the job (the idempotency key).
    """

    audio: bytes
    metadata: dict[str, Any]
    embedding: np.ndarray
    provenance: Provenance


@dataclass(frozen=True)
class Report:
    """Progress a generate function hands the worker between keepers (optional).

    Why an item of the same stream: generation decides what is worth reporting (candidates
    made, kept, rejected and why) and the worker owns the job row; yielding a report puts it in
    the job's ``progress`` at once (one heartbeat), without giving the generator the queue.
    Keys the worker owns (``stored``, ``worker``, ``attempt``) are not overwritten.

    Attributes:
        progress: JSON-ready values merged into the job's progress dict.
    """

    progress: dict[str, Any]


#: ``job -> keepers``, optionally interleaved with :class:`Report` items.
GenerateFn = Callable[[BackfillJob], Iterable[Keeper | Report]]
_WORKER_KEYS = frozenset({"stored", "worker", "attempt"})
OnStored = Callable[[int, Keeper], None]


@dataclass(frozen=True)
class Pipeline:
    """What a worker process needs from the wiring: how to generate, and with which encoder.

    ``api`` builds it from the settings (``TUNESCOPE_BACKFILL_GENERATE`` names a
    ``module:factory`` taking the settings and returning one of these).
    """

    generate: GenerateFn
    encoder_id: str


@dataclass
class WorkerStats:
    """What one worker did (for its log line and the tests)."""

    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0
    stored: int = 0
    outcomes: list[tuple[int, str]] = field(default_factory=list)


class _Heartbeat(threading.Thread):
    """Renews a job's lease every ``period`` seconds until stopped or the lease is lost."""

    def __init__(self, factory: SessionFactory, job: BackfillJob, lease_s: float,
                 period: float, progress: dict[str, Any]) -> None:
        super().__init__(name=f"heartbeat-job-{job.id}", daemon=True)
        self.factory, self.job, self.lease_s, self.period = factory, job, lease_s, period
        self.progress = progress
        self.done = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        """Beat until :meth:`stop`; a failed beat (database down) is retried next period."""
        while not self.done.wait(self.period):
            try:
                if not queue.heartbeat(self.factory, self.job, lease_s=self.lease_s,
                                       progress=dict(self.progress)):
                    self.lost.set()
                    return
            except Exception as e:  # the database may be back next period; the lease says
                log.warning("heartbeat of job %d failed: %s", self.job.id, e)

    def stop(self) -> None:
        """End the thread (waits for a beat in flight)."""
        self.done.set()
        self.join()


def run_job(factory: SessionFactory, store: AudioStore, generate_fn: GenerateFn,
            job: BackfillJob, *, encoder_id: str, lease_s: float, heartbeat_s: float,
            stop_event: threading.Event, on_stored: OnStored | None = None) -> str:
    """Work one claimed job to its end; return the outcome.

    Each :class:`Keeper` ``generate_fn`` yields is stored at once; each :class:`Report` is
    merged into the job's progress (so rejected candidates show up while the job runs).

    Returns:
        ``done``, ``queued`` (failed attempt, will be retried), ``failed`` (attempts spent),
        ``released`` (stop requested; given back) or ``lost`` (the lease went to another worker).
    """
    progress: dict[str, Any] = {"stage": "generating", "stored": 0, "worker": job.lease_owner,
                                "attempt": job.attempts}
    beat = _Heartbeat(factory, job, lease_s, heartbeat_s, progress)
    beat.start()
    track_ids: list[int] = []
    keepers: Iterable[Keeper | Report] = ()
    try:
        keepers = generate_fn(job)  # inside: a plain function may raise before yielding
        for keeper in keepers:
            if beat.lost.is_set():
                return "lost"
            if isinstance(keeper, Report):
                progress.update({k: v for k, v in keeper.progress.items() if k not in _WORKER_KEYS})
                if not queue.heartbeat(factory, job, lease_s=lease_s, progress=dict(progress)):
                    beat.lost.set()
                continue
            tid = queue.store_generated(factory, store, job, keeper.audio, keeper.metadata,
                                        keeper.embedding, encoder_id, keeper.provenance)
            if tid not in track_ids:
                track_ids.append(tid)
            progress["stored"] = len(track_ids)
            # Progress is visible at once (and the lease renewed); False: no longer ours.
            if not queue.heartbeat(factory, job, lease_s=lease_s, progress=dict(progress)):
                beat.lost.set()
            if on_stored is not None:
                on_stored(tid, keeper)
            if stop_event.is_set():
                return "released" if queue.release(factory, job) else "lost"
    except Exception as e:
        log.warning("backfill job %d attempt %d failed: %s", job.id, job.attempts, e)
        progress["stage"] = "failed"
        return queue.fail(factory, job, f"{type(e).__name__}: {e}", progress=dict(progress)) or "lost"
    except BaseException:  # KeyboardInterrupt: give the job back before dying
        queue.release(factory, job)
        raise
    finally:
        close = getattr(keepers, "close", None)
        if close is not None:
            close()
        beat.stop()
    if beat.lost.is_set():
        return "lost"
    progress["stage"] = "done"
    return "done" if queue.complete(factory, job, track_ids, progress=dict(progress)) else "lost"


def run_worker(factory: SessionFactory, store: AudioStore, generate_fn: GenerateFn, *,
               worker_id: str, lease_s: float, heartbeat_s: float, stop_event: threading.Event,
               encoder_id: str, poll_s: float = 1.0, max_running: int | None = None,
               max_jobs: int | None = None, exit_when_idle: bool = False,
               on_stored: OnStored | None = None,
               on_outcome: Callable[[BackfillJob, str], None] | None = None) -> WorkerStats:
    """Claim and work jobs until ``stop_event`` is set (or the limits below are met).

    Args:
        factory: session factory of a migrated catalog.
        store: where keepers' audio goes.
        generate_fn: ``job -> keepers`` (generator, re-ranking and gate).
        worker_id: unique per worker (host, pid, thread): leases are checked against it.
        lease_s: lease length; a worker dead for this long loses its job to another.
        heartbeat_s: lease renewal period (a few per lease).
        stop_event: set it to stop; a job in progress is given back after its current keeper.
        encoder_id: the encoder that made the keepers' embeddings.
        poll_s: wait between claims when the queue is empty.
        max_running: concurrent jobs over all workers (see :func:`index.repo.backfill.claim`).
        max_jobs: stop after this many claims (tests, one-shot runs).
        exit_when_idle: stop at the first empty poll instead of waiting for work.
        on_stored: ``(track_id, keeper)`` after each keeper is committed (index it here).
        on_outcome: ``(job, outcome)`` after each job (progress lines).

    Returns:
        Counts of what happened.
    """
    if heartbeat_s >= lease_s:
        raise ValueError(f"heartbeat_s ({heartbeat_s}) must be shorter than lease_s ({lease_s})")
    stats = WorkerStats()
    while not stop_event.is_set() and (max_jobs is None or stats.claimed < max_jobs):
        job = queue.claim(factory, worker_id, lease_s, max_running=max_running)
        if job is None:
            if exit_when_idle:
                break
            stop_event.wait(poll_s)
            continue
        stats.claimed += 1
        before = len(queue.job_progress(factory, job.id).stored_track_ids)
        outcome = run_job(factory, store, generate_fn, job, encoder_id=encoder_id,
                          lease_s=lease_s, heartbeat_s=heartbeat_s, stop_event=stop_event,
                          on_stored=on_stored)
        stats.stored += len(queue.job_progress(factory, job.id).stored_track_ids) - before
        _count(stats, outcome)
        stats.outcomes.append((job.id, outcome))
        if on_outcome is not None:
            on_outcome(job, outcome)
    return stats


def _count(stats: WorkerStats, outcome: str) -> None:
    attr = {"done": "done", "queued": "retried", "failed": "failed", "released": "released"}
    name = attr.get(outcome, "lost")
    setattr(stats, name, getattr(stats, name) + 1)


def start_worker_thread(factory: SessionFactory, store: AudioStore, generate_fn: GenerateFn, *,
                        worker_id: str, lease_s: float, heartbeat_s: float, encoder_id: str,
                        **kwargs: Any) -> tuple[threading.Thread, threading.Event]:
    """Run :func:`run_worker` in a daemon thread (the in-process mode of ``tunescope serve``).

    Returns:
        ``(thread, stop_event)``: set the event and join the thread at shutdown; the job in
        progress is given back to the queue, not lost.
    """
    stop = threading.Event()

    def target() -> None:
        try:
            run_worker(factory, store, generate_fn, worker_id=worker_id, lease_s=lease_s,
                       heartbeat_s=heartbeat_s, stop_event=stop, encoder_id=encoder_id, **kwargs)
        except Exception:  # a dead worker thread must say so; the server keeps serving
            log.exception("in-process backfill worker %s stopped", worker_id)

    thread = threading.Thread(target=target, name=f"backfill-{worker_id}", daemon=True)
    thread.start()
    return thread, stop
