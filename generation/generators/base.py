"""The one interface every music generator implements: a request in, candidates out.

Numpy at the boundary, as for the encoders: a request carries the prior's samples as a float32
array and a candidate carries mono float32 audio, so the backfill job, the novelty gate and the
store never touch torch. This module imports neither torch nor any backend.

Reproducibility is part of the contract: candidate ``i`` of a request is made from
``seed + i`` (:meth:`GenerationRequest.seeds`), and regenerating that one seed alone with the
same weights gives the same audio (up to float noise of batched kernels). That is what lets a
stored track's provenance (generator, weights id, seed, conditioning) reproduce it.
"""

from __future__ import annotations

import math
from collections.abc import Generator as Generator_
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from generation.errors import GenerationError

MIN_DURATION_S = 0.01  # tiny test models make a few milliseconds; real ones say their own limit
MAX_DURATION_S = 300.0
MAX_CANDIDATES = 64
MAX_TEXT_CHARS = 2000
SEED_LIMIT = 2**32  # numpy and torch both take it; candidate seeds wrap inside it

# How an attribute reads inside a text prompt (text-conditioned backends see the attributes
# only as words). Keys are normalised: lower case, spaces and dashes as underscores.
_PHRASES = {
    "tune_type": "{}",
    "meter": "in {}",
    "mode": "in a {} key",
    "key": "in {}",
    "tempo_class": "{} tempo",
    "tempo": "{} tempo",
    "ensemble": "for {}",
    "instrument": "for {}",
    "register": "{} register",
    "density": "{} texture",
}


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """What to make: a query, the prior's samples for it, explicit attributes, how much.

    Attributes:
        text: the user's query (``None`` when only embeddings or attributes condition it).
        target_embeddings: float32 ``[k, d]``, the diffusion prior's samples for the query in
            the encoder's audio space (``None`` if there are none). Stored read-only.
        attributes: explicit musical attributes, e.g. ``{"meter": "3/4", "mode": "minor",
            "tempo_class": "slow", "tune_type": "waltz", "ensemble": "accordion"}``; they
            override whatever the text or the embeddings imply.
        duration_s: seconds of audio per candidate.
        n_candidates: how many candidates to make.
        seed: candidate ``i`` uses ``(seed + i) % 2**32``.
        avoid_embeddings: float32 ``[m, d]`` audio embeddings the candidates should not sound
            like (the catalog the backfill fills, in the encoder's space), or ``None``. A
            generator with a candidate search (``symbolic``) penalises closeness above
            ``avoid_threshold`` in its objective, so the novelty gate refuses fewer of its
            candidates; others may ignore it (the gate still applies after them).
        avoid_threshold: the cosine above which closeness to ``avoid_embeddings`` is penalised
            (the gate's bar); required with ``avoid_embeddings``.

    Raises:
        GenerationError: on construction, for a value out of bounds (named in the message).
    """

    text: str | None = None
    target_embeddings: np.ndarray | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    duration_s: float = 10.0
    n_candidates: int = 4
    seed: int = 0
    avoid_embeddings: np.ndarray | None = None
    avoid_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.text is not None:
            if not isinstance(self.text, str):
                raise GenerationError(f"text must be a string or None, got {type(self.text).__name__}")
            if len(self.text) > MAX_TEXT_CHARS:
                raise GenerationError(f"text has {len(self.text)} characters; at most {MAX_TEXT_CHARS}")
        object.__setattr__(self, "target_embeddings", _checked_targets(self.target_embeddings))
        object.__setattr__(self, "attributes", _checked_attributes(self.attributes))
        object.__setattr__(self, "avoid_embeddings", _checked_targets(self.avoid_embeddings))
        t = self.avoid_threshold
        if (self.avoid_embeddings is None) != (t is None):
            raise GenerationError("avoid_embeddings and avoid_threshold go together (both or neither)")
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)
                              or not math.isfinite(t) or not -1.0 <= t <= 1.0):
            raise GenerationError(f"avoid_threshold must be a cosine in [-1, 1], got {t!r}")
        d = self.duration_s
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) \
                or not MIN_DURATION_S <= d <= MAX_DURATION_S:
            raise GenerationError(
                f"duration_s must be a number in [{MIN_DURATION_S}, {MAX_DURATION_S}], got {d!r}")
        n = self.n_candidates
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CANDIDATES:
            raise GenerationError(f"n_candidates must be an integer in [1, {MAX_CANDIDATES}], got {n!r}")
        s = self.seed
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT:
            raise GenerationError(f"seed must be an integer in [0, 2**32), got {s!r}")

    def seeds(self) -> list[int]:
        """The seed of each candidate, in order: ``(seed + i) % 2**32``."""
        return [(self.seed + i) % SEED_LIMIT for i in range(self.n_candidates)]

    def prompt(self) -> str:
        """The text a text-conditioned model sees: the query, then the attributes as words.

        Example: text ``"a dance tune"`` with ``{"tune_type": "waltz", "meter": "3/4",
        "ensemble": "accordion"}`` gives ``"a dance tune, waltz, in 3/4, for accordion"``.
        An unknown attribute reads as ``"<value> <key>"``.
        """
        parts = [self.text.strip()] if self.text and self.text.strip() else []
        for key, value in self.attributes.items():
            phrase = _PHRASES.get(key, "{} " + key.replace("_", " "))
            parts.append(phrase.format(value))
        return ", ".join(parts)


def _checked_targets(t: Any) -> np.ndarray | None:
    if t is None:
        return None
    try:
        arr = np.array(t, dtype=np.float32)  # a copy: the caller's array may change later
    except (TypeError, ValueError) as e:
        raise GenerationError(f"target_embeddings must be a numeric [k, d] array: {e}") from e
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise GenerationError(f"target_embeddings must have shape [k, d] with k, d >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise GenerationError("target_embeddings contain NaN or infinite values")
    arr.setflags(write=False)
    return arr


def _checked_attributes(attrs: Any) -> Mapping[str, str]:
    if not isinstance(attrs, Mapping):
        raise GenerationError(f"attributes must be a mapping of str to str, got {type(attrs).__name__}")
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip() or not value.strip():
            raise GenerationError(f"attribute {key!r}: {value!r} must be a non-empty str -> str")
        out[key.strip().lower().replace(" ", "_").replace("-", "_")] = value.strip()
    return MappingProxyType(out)


@dataclass(frozen=True, eq=False)
class Candidate:
    """One generated piece and everything needed to say where it came from.

    Attributes:
        audio: float32 ``[n_samples]``, mono, at ``sample_rate``.
        sample_rate: Hz.
        score: the symbolic score when the generator has one (e.g. a list of note events or
            MIDI bytes), else ``None`` (audio-only models).
        conditioning: what conditioned it, JSON-ready: the prompt actually used, the
            attributes, whether and how the target embeddings were used, guidance, steps.
        generator_id: the backend (``Generator.id``).
        seed: the seed this candidate was made from.
        weights_id: the exact weights (``Generator.weights_id``).

    Raises:
        GenerationError: audio that is not non-empty, mono, float32 and finite, or a rate <= 0.
    """

    audio: np.ndarray
    sample_rate: int
    score: Any | None
    conditioning: dict[str, Any]
    generator_id: str
    seed: int
    weights_id: str

    def __post_init__(self) -> None:
        a = self.audio
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.size == 0 or a.dtype != np.float32:
            raise GenerationError(
                f"candidate audio must be a non-empty mono float32 array, got "
                f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
        if not np.isfinite(a).all():
            raise GenerationError("candidate audio contains NaN or infinite samples")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise GenerationError(f"sample_rate must be a positive int, got {self.sample_rate!r}")

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return self.audio.size / self.sample_rate


@runtime_checkable
class Generator(Protocol):
    """A music generator.

    Attributes:
        id: the backend (``"musicgen"``, ``"audioldm2"``, ``"stable-audio"``, ``"symbolic"``).
        weights_id: names the exact weights (``<name>@<12 hex of their sha256>``), for
            provenance: two generators with the same id and weights id make the same audio from
            the same request.
        sample_rate: the rate of the audio its candidates carry.
    """

    id: str
    weights_id: str
    sample_rate: int

    def generate(self, request: GenerationRequest) -> list[Candidate]:
        """Make ``request.n_candidates`` candidates, in the order of ``request.seeds()``.

        Raises:
            GenerationError: the request asks for something this backend cannot make (e.g. a
                duration past the model's maximum); the message names the limit.
        """
        ...


@runtime_checkable
class StagedGenerator(Generator, Protocol):
    """A generator whose search can hand on its best candidates before it ends.

    The backfill pipeline stores a first keeper from an early list, so the first track a user
    sees does not wait for the whole search (the symbolic generator's cross-entropy search).
    """

    def generate_staged(self, request: GenerationRequest
                        ) -> Generator_[tuple[list[Candidate], bool], Sequence[np.ndarray] | None, None]:
        """``(best-first candidates so far, final)`` as the search goes.

        Exactly one pair has ``final`` true, the last. The caller may ``send`` back the unit
        embeddings it kept from a list; later lists then avoid near-twins of them.
        """
        ...
