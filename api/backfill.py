"""Wiring of the backfill worker: the configured pipeline, and the worker inside the server.

The pipeline (generator + re-ranking + novelty gate) is named by
``TUNESCOPE_BACKFILL_GENERATE`` as ``module:factory``, a function of the settings returning a
:class:`generation.backfill.worker.Pipeline`; ``tunescope worker`` and ``tunescope serve``
(in-process mode, unless ``TUNESCOPE_BACKFILL_IN_PROCESS=false``) both load it from here.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading

from api.settings import Settings
from api.wiring import AppState
from generation.backfill.worker import Keeper, Pipeline, start_worker_thread

log = logging.getLogger(__name__)


class PipelineConfigError(ValueError):
    """The configured backfill pipeline is missing or cannot be loaded."""


def load_pipeline(spec: str | None, settings: Settings) -> Pipeline:
    """Import ``module:factory`` and call it with the settings.

    Raises:
        PipelineConfigError: no spec, an unimportable one, or a factory that returns
            something other than a Pipeline.
    """
    if not spec or ":" not in spec:
        raise PipelineConfigError(
            f"no backfill pipeline configured (got {spec!r}): set TUNESCOPE_BACKFILL_GENERATE or "
            "--generate to 'module:factory', a function of the settings returning a Pipeline")
    module, _, name = spec.partition(":")
    try:
        pipeline = getattr(importlib.import_module(module), name)(settings)
    except (ImportError, AttributeError) as e:
        raise PipelineConfigError(f"cannot load the backfill pipeline {spec!r}: {e}") from e
    if not isinstance(pipeline, Pipeline):
        raise PipelineConfigError(f"{spec!r} returned {type(pipeline).__name__}, not a Pipeline")
    return pipeline


def start_in_process_worker(state: AppState) -> tuple[threading.Thread, threading.Event] | None:
    """Start the server's own worker thread when a pipeline is configured (else None).

    Each keeper becomes searchable the moment it is committed (:func:`add_generated`), so a
    user polling the job sees new tracks in results without a restart.
    """
    from api.catalog_writes import add_generated

    s = state.settings
    if not s.backfill_generate or not s.backfill_in_process:
        return None
    pipeline = load_pipeline(s.backfill_generate, s)

    def on_stored(track_id: int, keeper: Keeper) -> None:
        add_generated(state, track_id, keeper.embedding, pipeline.encoder_id)

    return start_worker_thread(
        state.session_factory, state.store, pipeline.generate,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:serve", lease_s=s.worker_lease_s,
        heartbeat_s=s.worker_heartbeat_s, encoder_id=pipeline.encoder_id, poll_s=s.worker_poll_s,
        max_running=s.backfill_max_running, on_stored=on_stored)
