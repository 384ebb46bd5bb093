"""Queueing generation: the backfill a weak search asks for, and explicit generate requests.

A weak match is a result state, never an error (:mod:`retrieval.search.weak_match`): the page
is answered as usual, and when backfill is enabled (``TUNESCOPE_BACKFILL_GENERATE``) the first
page of a weak text query also queues a job that generates tracks for it. Equivalent requests
(same normalised query, same options) share one job (:func:`index.repo.backfill.enqueue`), and
a cap on generated tracks per hour keeps a stream of odd queries from flooding the catalog.

Queueing is a side effect of a read, so it never fails the search: an error is logged and
the response says ``backfill: null``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from api.schemas.backfill import BackfillStatus
from api.settings import Settings
from api.wiring import AppState
from index.models import BackfillJob
from index.repo import backfill as jobs
from retrieval.errors import RetrievalError
from retrieval.search import Filters, SearchOptions
from retrieval.search.weak_match import WeakMatch

log = logging.getLogger(__name__)

#: Filters that do not change what is generated: whether a track was generated is not
#: something a generator can honour.
_NOT_GENERATIVE = frozenset({"origin"})


def filter_values(filters: Filters) -> dict[str, Any]:
    """The set filters as JSON (lists and bounds), without those a generator cannot honour.

    They are part of the job's request (the generator reads them) and of its dedup key.
    """
    out: dict[str, Any] = {}
    for name, value in dataclasses.asdict(filters).items():
        if name in _NOT_GENERATIVE or value is None or value == ():
            continue
        out[name] = sorted(value) if isinstance(value, tuple) else value
    return out


def generation_request(*, n: int, duration_s: float, attributes: dict[str, str] | None = None,
                       like_track_id: int | None = None,
                       filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job's ``request`` in the shape the backfill pipeline reads."""
    return {"n": int(n), "duration_s": float(duration_s), "attributes": dict(attributes or {}),
            "like_track_id": like_track_id, "filters": dict(filters or {})}


def enqueue_generation(factory: Callable[[], Session], query: str, request: dict[str, Any], *,
                       recent_window_s: float) -> tuple[BackfillJob, bool]:
    """Queue ``request`` for ``query`` unless an equivalent job is pending or just finished.

    The whole request is the dedup key's options: candidates, duration, attributes, the
    example track and the filters all change what is made.
    """
    key = jobs.request_key(query, request)
    return jobs.enqueue(factory, key, query, request, recent_window_s=recent_window_s)


def backfill_applies(settings: Settings, options: SearchOptions) -> bool:
    """Whether a search with these options may queue generation, should it be weak.

    Only when backfill is configured and this is the first page (page 2 of the same query
    must not queue again). A search restricted to generated tracks is left alone: few of them
    exist, so it is weak by nature, and generating for it would feed on itself.
    """
    if not settings.backfill_generate or options.offset != 0:
        return False
    origins = {v.strip().lower() for v in options.filters.origin}
    return not (origins and origins <= {"generated"})


def wants_backfill(settings: Settings, weak: WeakMatch | None, options: SearchOptions) -> bool:
    """Whether a search result should queue generation: it may (above) and it is weak."""
    return weak is not None and weak.weak and backfill_applies(settings, options)


def prior_nn_for(state: AppState, query: str, options: SearchOptions) -> np.ndarray | None:
    """The prior's ``prior_nn`` signal for a plain text search that may queue backfill.

    Deciding to spend generation is worth the prior's samples: ``prior_nn`` is the signal about
    the catalog rather than the text encoder (:mod:`retrieval.search.weak_match`). None, and
    the detector does without it, when backfill cannot apply or no prior exists for the encoder.
    """
    if not backfill_applies(state.settings, options):
        return None
    from retrieval.search.generative import prior_neighbour_cosines

    try:
        prior = state.get_prior()
        return prior_neighbour_cosines(state.service, prior, [query], options)
    except RetrievalError as e:  # no prior for this encoder (or one trained for another)
        log.debug("no prior_nn for the weak verdict: %s", e)
        return None


def over_hourly_cap(settings: Settings, factory: Callable[[], Session], n: int,
                    now: dt.datetime | None = None) -> bool:
    """True when ``n`` more generated tracks would pass ``backfill_max_per_hour``.

    Counts the tracks generated in the last hour and those still to come from pending jobs.
    A soft limit: two searches racing past the check may both queue.
    """
    cap = settings.backfill_max_per_hour
    if cap is None:
        return False
    now = now or jobs.utcnow()
    used = jobs.generated_since(factory, now - dt.timedelta(hours=1))
    return used + jobs.pending_candidates(factory) + n > cap


def backfill_for(state: AppState, query: str, weak: WeakMatch | None,
                 options: SearchOptions) -> BackfillStatus | None:
    """Queue (or find) the backfill job of a weak search; None when none applies or on error.

    Past the hourly cap no job is queued: the equivalent pending job is still reported when
    there is one, else the status is ``limited`` with no job id.
    """
    s = state.settings
    if not wants_backfill(s, weak, options):
        return None
    request = generation_request(n=s.backfill_candidates, duration_s=s.backfill_duration_s,
                                 filters=filter_values(options.filters))
    try:
        if over_hourly_cap(s, state.session_factory, s.backfill_candidates):
            job = jobs.equivalent_job(state.session_factory, jobs.request_key(query, request),
                                      recent_window_s=s.backfill_recent_s)
            if job is None:
                return BackfillStatus(job_id=None, status="limited", created=False)
            return BackfillStatus(job_id=job.id, status=job.status, created=False)
        job, created = enqueue_generation(state.session_factory, query, request,
                                          recent_window_s=s.backfill_recent_s)
    except Exception:  # noqa: BLE001 - a side effect of a read: the search must still answer
        log.exception("could not queue backfill for %r; answering without it", query)
        return None
    return BackfillStatus(job_id=job.id, status=job.status, created=created)
