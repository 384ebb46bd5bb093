"""Wiring: the one place where settings become objects (encoder, generator, prior, search service).

Every entry point calls these: the HTTP app, the CLI commands and the embedding stage of
ingestion. Keeping them here is what guarantees that the vectors a query is compared with come
from the same encoder, the same weights and the same device everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from api.settings import Settings
from index.store import AudioStore

if TYPE_CHECKING:  # heavy imports stay lazy: torch loads only when an encoder is built
    from generation.generators.base import Generator
    from retrieval.conversation.steering import ConversationEngine
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


def build_generator(settings: Settings, name: str | None = None, encoder: Encoder | None = None) -> Generator:
    """The generator named by ``name`` or ``settings.generator``, with its configured weights path.

    ``symbolic`` is conditioned on the encoder's space and re-ranks with it: it gets ``encoder``
    (the caller's, so the process holds one), else the configured encoder is built for it. Its
    committed weights are used unless ``TUNESCOPE_GENERATOR_PATH`` names others.

    Raises:
        GenerationError: an unknown name; ``GeneratorWeightsNotFound`` when the configured
            directory lacks files, ``GeneratorUnavailable`` when the backend cannot be imported
            (a missing extra, or a backend not built yet).
    """
    from generation.generators import load_generator

    name = name or settings.generator
    if name == "symbolic":
        return load_generator(name, settings.generator_path, settings.device,
                              encoder=encoder or build_encoder(settings))
    return load_generator(name, settings.generator_path, settings.device)


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


@dataclass
class AppState:
    """Everything a request needs, built once per app by :func:`build_state`.

    Attributes:
        settings: the configuration the app was built from.
        session_factory: opens a catalog database session.
        store: the content-addressed audio store.
        service: the search service (encoder, vector index, column store).
        write_lock: serialises catalog writes (upload, delete) so the index, the store and the
            database change in the same order.
        prior: the diffusion prior for generative search; ``None`` loads the one trained for
            the service's encoder on first use (:meth:`get_prior`).
        ready: set once the models are warm (:func:`warm_up`); ``/v1/health`` says
            "starting" until then.
    """

    settings: Settings
    session_factory: Callable[[], Session]
    store: AudioStore
    service: SearchService
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    prior: PriorPipeline | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    _conversations: Any = None
    _conversations_lock: threading.Lock = field(default_factory=threading.Lock)

    def get_conversations(self) -> ConversationEngine:
        """The conversational engine, built on first use and again when the catalog changed.

        Built lazily: it reads every track's attributes and fits the attribute directions
        (about a second on a large catalog), which a server that never converses should not pay.
        """
        with self._conversations_lock:
            engine = self._conversations
            if engine is None or len(engine.catalog) != len(self.service.table):
                engine = build_conversations(self)
                self._conversations = engine
            return engine

    def get_prior(self) -> PriorPipeline:
        """The injected prior, else the one trained for the service's encoder (cached).

        Raises:
            WeightsNotFoundError: no prior exists for this encoder.
        """
        return self.prior if self.prior is not None else load_prior(self.service.encoder.id)


def build_conversations(state: AppState) -> ConversationEngine:
    """The conversation engine over the state's search service, with the configured understander.

    With ``llm_url`` set, messages go to that OpenAI-compatible endpoint first and the offline
    parser answers whenever it fails or is slow. The prior gives vague turns breadth when one
    exists for the encoder.
    """
    from retrieval.conversation.steering import ConversationEngine
    from retrieval.errors import RetrievalError

    try:
        prior = state.get_prior()
    except RetrievalError:
        prior = None
    engine = ConversationEngine.build(state.service, state.session_factory, prior=prior)
    s = state.settings
    if s.llm_url:
        from retrieval.conversation.llm import LLMConfig, LLMUnderstander

        engine.understand = LLMUnderstander(
            LLMConfig(s.llm_url, s.llm_model, s.llm_timeout_s, s.llm_api_key), engine.parser.parse)
    return engine


def build_state(settings: Settings, encoder: Encoder | None = None, *,
                service: SearchService | None = None,
                prior: PriorPipeline | None = None) -> AppState:
    """Open the catalog and build the search service (unless one is injected, as benchmarks do).

    Args:
        settings: configuration.
        encoder: the text-audio encoder; built from ``settings`` when omitted.
        service: a ready search service (its encoder is then the one used).
        prior: a diffusion prior to use instead of the one found for the encoder (tests).
    """
    from index.db import open_catalog

    factory = open_catalog(settings.resolved_database_url)
    if service is None:
        service = build_search_service(settings, encoder or build_encoder(settings), factory)
    return AppState(settings, factory, AudioStore(settings.audio_dir), service, prior=prior)


def warm_up(state: AppState) -> None:
    """Run one of each kind of query so the first user's query is not the slow one.

    The first text query after a start took ~6 s (lazy imports, MiniLM's first forward, FAISS
    and torch thread pools); it is paid here, before ``/v1/health`` reports ``ok``. Failures
    are logged, never raised: a server that cannot warm up still answers (and says why).
    """
    import logging

    import numpy as np

    from retrieval.errors import RetrievalError

    log = logging.getLogger(__name__)
    try:
        svc = state.service
        svc.search_text("warm up")
        svc.search_audio(np.zeros(svc.encoder.sample_rate, np.float32) + 1e-3)
        try:
            state.get_prior()
        except RetrievalError as e:  # no prior for this encoder: generative search says so
            log.info("no diffusion prior to warm up: %s", e)
    except Exception:  # noqa: BLE001 - warm-up is best effort; the server must still start
        log.exception("warm-up failed")
    finally:
        state.ready.set()
