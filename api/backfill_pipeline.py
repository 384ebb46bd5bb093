"""The default backfill pipeline, built from the settings: ``api.backfill_pipeline:from_settings``.

Set ``TUNESCOPE_BACKFILL_GENERATE=api.backfill_pipeline:from_settings`` to turn backfill on
(``make demo`` does); ``tunescope worker`` and ``tunescope serve`` load it through
:func:`api.backfill.load_pipeline`. It lives in ``api`` and not beside the pipeline in
``generation/backfill/pipeline.py`` because building it means reading the settings and
wiring the encoder, prior and generator (:mod:`api.wiring`), which only ``api`` may do.

What it builds (:class:`generation.backfill.pipeline.BackfillPipeline`): the configured encoder,
the prior trained for it, the configured generator (``TUNESCOPE_GENERATOR``, the symbolic one by
default, conditioned on that encoder), the melodic n-gram index at
``$TUNESCOPE_HOME/novelty/melody-12grams.npy`` (``tunescope build-novelty-index``; loaded at the
first job, which fails saying so while it is missing) and the catalog database's vectors, read
at the start of every job.
"""

from __future__ import annotations

import logging
import threading

from api.settings import Settings
from generation.backfill.worker import Pipeline

log = logging.getLogger(__name__)

DEFAULT_SPEC = "api.backfill_pipeline:from_settings"

_built: dict[tuple[object, ...], Pipeline] = {}
_lock = threading.Lock()


def from_settings(settings: Settings) -> Pipeline:
    """The backfill pipeline for ``settings``, built once per process per configuration.

    Raises:
        RetrievalError: the encoder or its prior cannot be loaded.
        GenerationError: the generator cannot be loaded (or was trained for another encoder).
    """
    key = (settings.encoder, settings.encoder_path, settings.device, settings.generator,
           settings.generator_path, settings.resolved_database_url, settings.novelty_index_path)
    with _lock:
        if key not in _built:
            _built[key] = _build(settings)
        return _built[key]


def _build(settings: Settings) -> Pipeline:
    from api.wiring import build_encoder, build_generator, load_prior
    from generation.backfill.catalog import DatabaseCatalog
    from generation.backfill.pipeline import BackfillPipeline
    from index.db import open_catalog

    encoder = build_encoder(settings)
    prior = load_prior(encoder.id)
    generator = build_generator(settings, encoder=encoder)
    warm = getattr(generator, "warm_up", None)
    if callable(warm):  # e.g. the symbolic generator's soundfonts: paid at start, not by the first job
        warm()
    catalog = DatabaseCatalog(open_catalog(settings.resolved_database_url), encoder.id, encoder.dim)
    path = settings.novelty_index_path
    if not path.is_file():
        log.warning("backfill: the novelty index %s is missing; jobs fail until `tunescope "
                    "build-novelty-index` has built it", path)
    pipeline = BackfillPipeline(encoder, prior, generator, ngram=path, catalog=catalog)
    return pipeline.as_pipeline()
