"""Wiring: the one place where settings become objects (encoder, prior, search service).

Every entry point calls these: the HTTP app, the CLI commands and the embedding stage of
ingestion. Keeping them here is what guarantees that the vectors a query is compared with come
from the same encoder, the same weights and the same device everywhere.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.settings import Settings

if TYPE_CHECKING:  # heavy imports stay lazy: torch loads only when an encoder is built
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline
    from retrieval.search import SearchService

_priors: dict[str, Any] = {}
_prior_lock = threading.Lock()


def build_encoder(settings: Settings, name: str | None = None) -> Encoder:
    """The encoder named by ``name`` or ``settings.encoder``, with its configured weights path.

    Raises:
        RetrievalError: an unknown encoder name, or weights missing at the configured path.
    """
    from retrieval.encoders import load_encoder

    return load_encoder(name or settings.encoder, settings.encoder_path, settings.device)


def load_prior(encoder_id: str, weights_dir: str | Path | None = None) -> PriorPipeline:
    """The diffusion prior trained for ``encoder_id``, loaded once per process.

    A prior is tied to its encoder's weights (one prior per encoder id), so the encoder id is
    the cache key.

    Raises:
        WeightsNotFoundError: no prior for this encoder (``tunescope train-prior`` makes one).
    """
    from retrieval.prior import prior_weights_path
    from retrieval.prior.pipeline import PriorPipeline

    key = f"{encoder_id}|{weights_dir}"
    with _prior_lock:
        if key not in _priors:
            _priors[key] = PriorPipeline.from_pretrained(prior_weights_path(encoder_id, weights_dir))
        return _priors[key]


def build_search_service(settings: Settings, encoder: Encoder,
                         session_factory: Callable[[], Session]) -> SearchService:
    """The search service over ``encoder``'s index, brought in line with the catalog database.

    One FAISS thread per query: the server's parallelism is its concurrent requests, and
    OpenMP teams spun up inside each request thread oversubscribe the CPU (10x slower).
    """
    from index.vectors import IndexConfig
    from retrieval.search import SearchService

    return SearchService.open(encoder, session_factory, settings.index_dir,
                              index_config=IndexConfig(device=settings.device, threads=1))
