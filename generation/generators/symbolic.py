"""``symbolic``: the embedded default generator (offline, CPU, fast), with a candidate search.

A request's target embeddings (the diffusion prior's samples for the query; the query's text
embedding when there are none) condition :class:`~generation.generators.symbolic_model.MelodyModel`
through its prefix; words in the query and the request's explicit attributes force the header's
attribute tokens; the melody is arranged and rendered through the soundfont renderer.

**Candidate search** (DITTO's idea, without gradients: rendering is not differentiable). A
candidate is a point in (sampling seed, temperature, which prior sample conditions it,
ensemble, tempo, register and, when several are given, soundfont):
:mod:`~generation.generators.symbolic_search`. Round 0
samples ``pool`` candidates from a broad distribution; each is rendered, embedded by the
platform's encoder and scored by :func:`~generation.generators.rerank.score_candidates`
(cosine to the prior's samples and to the query). Each further round is a cross-entropy-method
step: the best quarter (the elites) refit the Gaussians over temperature, tempo and register and
the smoothed categoricals over ensembles and tempo classes (and, when turned on, soundfonts and
prior samples), and a new pool is drawn from them. The best ``n_candidates`` of
all rounds are returned, best first.

**Early hand-off.** :meth:`SymbolicGenerator.generate_staged` also hands on the best
candidates so far after ``early_round`` rounds (3 of the default 6). The backfill pipeline
stores the first keeper from that list, so a longer search (measured in
``benchmarks/RESULTS.md``: 6 rounds win more hole queries than 3) does not delay the first
track a user sees; the later rounds' keepers follow when the search ends.

Seeds: pool member ``j`` (counted over all rounds) samples its melody from ``request.seed + j``
and draws its performance from the same seed, so a request always gives the same candidates;
with ``search_rounds=1`` and ``pool = n_candidates`` candidate ``i`` is made from
``seed + i`` exactly, as the :class:`~generation.generators.base.Generator` contract says.
Every candidate's ``conditioning`` holds all its parameters.

The model was trained with one encoder's embeddings (its id is in the weights' sidecar); with a
different encoder the conditioning would be noise, so construction refuses by default
(``on_encoder_mismatch="refuse"``) or, with ``"attributes"``, warns and conditions on
attributes only (re-ranking still uses the current encoder, which is valid).
"""

from __future__ import annotations

import logging
from collections.abc import Generator as Generator_
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generation.errors import GenerationError
from generation.generators.base import SEED_LIMIT, Candidate, GenerationRequest
from generation.generators.symbolic_model import sample
from generation.generators.symbolic_render import (
    TEMPO_BPM,
    Performance,
    forced_attributes,
    instrumentation,
    play,
    score_json,
    score_mode,
)
from generation.generators.symbolic_search import SearchDistribution, SearchParams
from generation.generators.symbolic_training import DEFAULT_WEIGHTS, load_model
from generation.symbolic import tokens as T
from generation.symbolic.render import DEFAULT_SOUNDFONT, preload_soundfont, soundfont_paths, training_soundfonts

if TYPE_CHECKING:
    from retrieval.encoders.base import Encoder

log = logging.getLogger(__name__)
CONDITIONS = ("auto", "targets", "text", "none")
#: Search-score cost per unit of cosine above the novelty bar (a typical spread of candidates'
#: scores is ~0.05, so 0.02 over the bar costs about as much as being the worst of a round).
NOVELTY_PENALTY = 4.0
#: Search-score cost of a forced attribute the candidate does not honour as heard (today: the
#: mode its melody's notes establish, which can differ from the header token's). Twice a typical
#: spread: a candidate that honours the request beats nearly every one that does not.
ATTRIBUTE_PENALTY = 0.1


@dataclass
class _Made:
    params: SearchParams
    candidate: Candidate
    score: float = 0.0
    embedding: np.ndarray | None = None
    query: float | None = None  # cosine to the query's text embedding (None: no query)


class SymbolicGenerator:
    """The registry's ``symbolic`` backend (see the module docstring).

    Args:
        path: the weights (a ``.safetensors`` file or a folder holding ``symbolic.safetensors``);
            None: the committed weights.
        device: only ``"auto"`` and ``"cpu"`` make sense (a 1-2 M parameter GRU): CPU always.
        encoder: the platform's encoder (text fallback and re-ranking). None: the committed
            clap-mini is loaded on first use.
        on_encoder_mismatch: ``"refuse"`` (raise) or ``"attributes"`` (warn, attributes only).
        condition: ``"auto"`` (targets when given, else the text embedding), ``"targets"``,
            ``"text"`` or ``"none"`` (attributes only).
        search_rounds: cross-entropy-method rounds (1: no search, just re-ranking).
        early_round: after this many rounds :meth:`generate_staged` hands on the best so far
            (None, or not below ``search_rounds``: only at the end).
        pool: candidates per round (default ``max(2 * n_candidates, 8)``).
        query_weight: share of the query term in the search score.
        sample_rate: of the audio.
        soundfonts: the soundfonts the search renders with (one name, or several to search
            over; None: every installed training soundfont,
            :func:`~generation.symbolic.render.training_soundfonts`). Default TimGM6mb alone:
            searching over three lowered eval-backfill's win rate (0.71 to 0.43, see
            :mod:`~generation.generators.symbolic_search`).
        search_targets: refit which prior sample conditions a candidate from the elites
            (default off, for the same measurement).
        bars: bars sampled per melody (a shorter piece loops, as the catalog's renders do).

    Raises:
        GeneratorWeightsNotFound: no weights at ``path``.
        GenerationError: the encoder differs from the one the weights were trained with
            (with ``on_encoder_mismatch="refuse"``), or a bad option.
    """

    id = "symbolic"

    def __init__(self, path: str | Path | None = None, device: str = "auto", *,
                 encoder: Encoder | None = None, on_encoder_mismatch: str = "refuse",
                 condition: str = "auto", search_rounds: int = 6, early_round: int | None = 3, pool: int | None = None,
                 query_weight: float = 0.5, sample_rate: int = 22050,
                 soundfonts: str | Sequence[str] | None = DEFAULT_SOUNDFONT, search_targets: bool = False,
                 bars: int = 16) -> None:
        if condition not in CONDITIONS:
            raise GenerationError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        if on_encoder_mismatch not in ("refuse", "attributes"):
            raise GenerationError(f"on_encoder_mismatch must be 'refuse' or 'attributes', got {on_encoder_mismatch!r}")
        if search_rounds < 1:
            raise GenerationError(f"search_rounds must be >= 1, got {search_rounds}")
        if early_round is not None and early_round < 1:
            raise GenerationError(f"early_round must be None or >= 1, got {early_round}")
        p = Path(path) if path is not None else DEFAULT_WEIGHTS
        p = p / "symbolic.safetensors" if p.is_dir() else p
        self.model, self.meta = load_model(p)
        self.weights_id = str(self.meta["weights_id"])
        self.trained_encoder_id = str(self.meta["encoder_id"])
        self.sample_rate = sample_rate
        self.condition, self.search_rounds, self.pool = condition, search_rounds, pool
        self.early_round = early_round
        self.query_weight, self.bars = query_weight, bars
        if isinstance(soundfonts, str):
            soundfonts = (soundfonts,)
        self.soundfonts = tuple(soundfonts) if soundfonts is not None else tuple(training_soundfonts())
        missing = sorted(set(self.soundfonts) - set(soundfont_paths()))
        if missing or not self.soundfonts:
            raise GenerationError(f"soundfonts {missing or '(none)'} are not installed (have "
                                  f"{sorted(soundfont_paths())}); run `make soundfonts` for the Debian banks")
        self.search_targets = search_targets
        self.on_encoder_mismatch = on_encoder_mismatch
        self._encoder = encoder
        self.embeddings_usable = True
        if encoder is not None:
            self._check_encoder(encoder)

    def warm_up(self) -> None:
        """Load every searched soundfont (FluidR3 takes 0.6 s), so a worker's first job does not wait."""
        for sf in self.soundfonts:
            preload_soundfont(sf, self.sample_rate)

    def _check_encoder(self, encoder: Encoder) -> None:
        if encoder.id == self.trained_encoder_id:
            return
        msg = (f"the symbolic generator's weights ({self.weights_id}) were trained on embeddings of "
               f"encoder {self.trained_encoder_id!r}, but the configured encoder is {encoder.id!r}; "
               "run `tunescope train-generator` after `tunescope embed` (or `tunescope train-all`)")
        if self.on_encoder_mismatch == "refuse":
            raise GenerationError(msg)
        log.warning("%s; conditioning on attributes only", msg)
        self.embeddings_usable = False

    @property
    def encoder(self) -> Encoder:
        """The platform's encoder (loaded on first use when none was given)."""
        if self._encoder is None:
            from retrieval.encoders import load_encoder

            enc = load_encoder("default", device="cpu")
            self._check_encoder(enc)
            self._encoder = enc
        return self._encoder

    def generate(self, request: GenerationRequest) -> list[Candidate]:
        """Candidates for ``request``, best first by the search score (module docstring).

        Raises:
            GenerationError: target embeddings whose width is not the model's condition width.
        """
        stages = list(self.generate_staged(request))
        return stages[-1][0]

    def generate_staged(self, request: GenerationRequest
                        ) -> Generator_[tuple[list[Candidate], bool], Sequence[np.ndarray] | None, None]:
        """``(best candidates so far, final)`` after round ``early_round`` and at the end.

        Each list is what :meth:`generate` would return had the search stopped there; the final
        one is exactly :meth:`generate`'s. The search runs lazily: a caller that stops
        iterating after the early list stops the search. A caller may ``send`` back the unit
        audio embeddings it kept from a list: later lists then skip near-twins of them (above
        ``request.avoid_threshold``), as they skip twins of each other, so the novelty gate's
        sibling check does not refuse the rest of a job for sounding like its first track.

        Raises:
            GenerationError: target embeddings whose width is not the model's condition width.
        """
        targets, query_vec, variant = self._conditions(request)
        forced = forced_attributes(request.attributes, request.text)
        pool = self.pool or max(2 * request.n_candidates, 8)
        if self.search_rounds == 1:
            pool = max(pool if self.pool else request.n_candidates, request.n_candidates)
        rng_dist = SearchDistribution(forced, targets is not None and len(targets) or 0, self.soundfonts,
                                      self.search_targets)
        made: list[_Made] = []
        keepers: list[np.ndarray] = []  # embeddings the caller kept from earlier lists (sent back)
        j = 0
        for r in range(self.search_rounds):
            params = [rng_dist.draw((request.seed + j + i) % SEED_LIMIT) for i in range(pool)]
            j += pool
            batch = self._make(params, request, targets, forced, variant)
            self._score(batch, targets, query_vec, request)
            made += batch
            if r + 1 == self.search_rounds or r + 1 == self.early_round:
                sent = yield self._best(made, request, r + 1, pool, keepers), r + 1 == self.search_rounds
                keepers += [] if sent is None else [np.asarray(e, np.float32) for e in sent]
            if r + 1 < self.search_rounds:
                elite = _elite(batch, max(2, pool // 4))
                conds = [m.candidate.conditioning for m in elite]
                rng_dist = rng_dist.refit([m.params for m in elite], [c["ensemble"] for c in conds],
                                          [c["tempo_class"] for c in conds])

    def _best(self, made: list[_Made], request: GenerationRequest, rounds: int, pool: int,
              keepers: list[np.ndarray]) -> list[Candidate]:
        """The best distinct ``n_candidates`` of ``made``, each with the search's tally."""
        ranked = sorted(made, key=lambda m: -m.score)
        thr = request.avoid_threshold
        lead = _query_lead(ranked, thr)
        if lead is not None:  # the one closest to the query goes first (see _query_lead)
            ranked = [lead] + [m for m in ranked if m is not lead]
        tally = {"rounds": rounds, "of_rounds": self.search_rounds, "pool": pool, "made": len(ranked),
                 "above_bar": None if thr is None else sum(
                     m.candidate.conditioning.get("nearest_avoid", 0.0) > thr for m in ranked),
                 "attribute_misses": sum(bool(_misses(m.candidate.conditioning)) for m in ranked)}
        out = []
        for m in _distinct(ranked, request, keepers):
            cond = dict(m.candidate.conditioning)
            cond["search"] = {"score": round(m.score, 5), **tally}
            out.append(replace(m.candidate, conditioning=cond))
        return out

    def _conditions(self, request: GenerationRequest) -> tuple[np.ndarray | None, np.ndarray | None, str]:
        """(condition rows ``[k, d]`` or None, the query's text embedding or None, the variant)."""
        d = self.model.config.cond_dim
        query_vec = None
        if request.text and request.text.strip():
            query_vec = self.encoder.embed_text([request.text])[0].astype(np.float32)
        targets = request.target_embeddings
        if targets is not None and targets.shape[1] != d:
            raise GenerationError(f"target_embeddings have width {targets.shape[1]}; this model "
                                  f"is conditioned on {d}-d embeddings ({self.trained_encoder_id})")
        mode = self.condition
        if mode == "auto":
            mode = "targets" if targets is not None else ("text" if query_vec is not None else "none")
        if not self.embeddings_usable or mode == "none":
            return None, query_vec, "attributes only"
        if mode == "text":
            return (None if query_vec is None else query_vec[None, :]), query_vec, "text embedding"
        if targets is None:
            return (None if query_vec is None else query_vec[None, :]), query_vec, "text embedding"
        unit = targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-8)
        return unit.astype(np.float32), query_vec, "prior samples"

    def _make(self, params: list[SearchParams], request: GenerationRequest, targets: np.ndarray | None,
              forced: dict[str, str], variant: str) -> list[_Made]:
        """Sample and render one candidate per parameter point (one batched sampling call)."""
        cond = None if targets is None else targets[[max(p.target, 0) for p in params]]
        groups: dict[tuple[str | None, str | None], list[int]] = {}
        for i, p in enumerate(params):
            groups.setdefault((p.ensemble, p.tempo_class), []).append(i)
        seqs: list[list[int]] = [[] for _ in params]
        for (ens, tempo), idx in groups.items():
            f = dict(forced)
            if ens:
                f["ensemble"] = ens
            if tempo:
                f["tempo_class"] = tempo
            out = sample(self.model, None if cond is None else cond[idx], n=len(idx),
                         seed=[params[i].seed for i in idx], forced=f,
                         temperature=[params[i].temperature for i in idx], bars=self.bars)
            for i, s in zip(idx, out, strict=True):
                seqs[i] = s
        return [self._render(p, s, request, forced, variant) for p, s in zip(params, seqs, strict=True)]

    def _render(self, p: SearchParams, seq: list[int], request: GenerationRequest, forced: dict[str, str],
                variant: str) -> _Made:
        mel = T.decode(seq)
        a = mel.attributes
        tempo = a.get("tempo_class") if a.get("tempo_class") in TEMPO_BPM else "moderate"
        lo, hi = TEMPO_BPM[tempo]
        ens = a.get("ensemble") if a.get("ensemble") not in (None, "unknown") else "solo piano"
        perf = Performance(ens, lo + (hi - lo) * p.tempo_jitter, p.transpose, p.soundfont, p.seed)
        minor = a.get("mode") == "minor"
        audio, qbpm, arranged, transpose = play(mel.events, a["meter"], minor, perf, request.duration_s,
                                                self.sample_rate)
        conditioning: dict[str, Any] = {
            "prompt": request.prompt(), "text": request.text, "variant": variant,
            "attributes": dict(request.attributes), "forced": forced, "header": a,
            "targets": None if request.target_embeddings is None else {
                "count": int(request.target_embeddings.shape[0]),
                "dim": int(request.target_embeddings.shape[1]),
                "used_for": "conditioning (prefix) and re-ranking" if variant == "prior samples"
                else "re-ranking only", "row": p.target},
            "temperature": round(p.temperature, 4), "ensemble": ens, "tempo_class": tempo,
            "bpm": round(perf.bpm, 2), "qbpm": round(qbpm, 2), "transpose": transpose,
            "soundfont": p.soundfont, "encoder_id": self.trained_encoder_id,
        }
        score = score_json(arranged, seq, a["meter"], qbpm, transpose,
                           instrumentation(ens, arranged.n_voices, (9 if minor else 0) + transpose))
        conditioning["melody_mode"] = score_mode(score)
        cand = Candidate(audio=audio, sample_rate=self.sample_rate, score=score, conditioning=conditioning,
                         generator_id=self.id, seed=p.seed, weights_id=self.weights_id)
        return _Made(p, cand)

    def _score(self, batch: list[_Made], targets: np.ndarray | None, query_vec: np.ndarray | None,
               request: GenerationRequest | None = None) -> None:
        """Search score: closeness to the targets and the query, less novelty and attribute penalties.

        With ``request.avoid_embeddings`` (the catalog), a candidate whose nearest one is above
        ``avoid_threshold`` (the novelty gate's bar) loses :data:`NOVELTY_PENALTY` per unit of
        excess cosine, so the cross-entropy rounds move toward candidates the gate will keep
        instead of spending the budget on near-copies it will refuse. A candidate that does not
        honour a forced attribute as heard (:func:`_misses`) loses :data:`ATTRIBUTE_PENALTY`.
        """
        from generation.generators.rerank import embed_candidates, score_candidates

        avoid = request.avoid_embeddings if request is not None else None
        misses = np.array([len(_misses(m.candidate.conditioning)) for m in batch], np.float32)
        emb = None
        if targets is None and query_vec is None:
            if avoid is None and not misses.any():
                return  # nothing to compare with: keep the sampling order
            emb = embed_candidates([m.candidate for m in batch], self.encoder)
            total = np.zeros(len(batch), np.float32)
        else:
            ref = targets if targets is not None else query_vec[None, :]
            s = score_candidates([m.candidate for m in batch], self.encoder, ref,
                                 query_vec if targets is not None else None, self.query_weight)
            emb, total = s.embeddings, s.total
            queries = s.query if s.query is not None else (s.target if targets is None else None)
            if queries is not None:
                for m, v in zip(batch, queries, strict=True):
                    m.query = float(v)
        total = total - ATTRIBUTE_PENALTY * misses
        if avoid is not None:
            unit = avoid / np.maximum(np.linalg.norm(avoid, axis=1, keepdims=True), 1e-8)
            near = (emb @ unit.T).max(1)
            total = total - NOVELTY_PENALTY * np.maximum(0.0, near - float(request.avoid_threshold))
            for m, v in zip(batch, near, strict=True):
                m.candidate.conditioning["nearest_avoid"] = round(float(v), 5)
        for m, v, e in zip(batch, total, emb, strict=True):
            m.score, m.embedding = float(v), e


def _elite(batch: list[_Made], k: int) -> list[_Made]:
    """The round's elites: the best ``k`` by the search score, plus the best two by the query alone.

    The backfill pipeline's first keeper of a list is the candidate closest to the query's text
    (``BackfillConfig.query_leads``), so the search refits towards both of its objectives; with
    the combined score alone, a prior whose samples sit on one corner of the request ("a jig":
    bagpipe jigs) pulls every round there and candidates that answer the words are never bred.
    """
    elite = sorted(batch, key=lambda m: -m.score)[:k]
    if all(m.query is not None for m in batch):
        elite += [m for m in sorted(batch, key=lambda m: -m.query)[:2] if all(m is not e for e in elite)]
    return elite


def _query_lead(ranked: list[_Made], threshold: float | None) -> _Made | None:
    """The candidate closest to the query, or None.

    Among those below the novelty bar (when there is one) that honour the forced attributes;
    failing that, among those below the bar.
    """
    ok = [m for m in ranked if m.query is not None and (
        threshold is None or m.candidate.conditioning.get("nearest_avoid", 0.0) <= threshold)]
    ok = [m for m in ok if not _misses(m.candidate.conditioning)] or ok
    return max(ok, key=lambda m: m.query) if ok else None


def _misses(conditioning: dict[str, Any]) -> list[str]:
    """The forced attributes a candidate does not honour as heard (see :data:`ATTRIBUTE_PENALTY`).

    Meter, tempo class and ensemble are what the candidate was rendered with, so only the mode
    can miss: the header token asks for it, the melody's notes decide it.
    """
    want = (conditioning.get("forced") or {}).get("mode")
    heard = conditioning.get("melody_mode")
    return ["mode"] if want and heard and heard != want else []


def _distinct(made: list[_Made], request: GenerationRequest, keepers: Sequence[np.ndarray] = ()) -> list[_Made]:
    """The best ``n_candidates``, skipping those the backfill gate would refuse.

    Only with a novelty bar (``request.avoid_threshold``): a candidate is skipped when it sits
    above the bar to the avoided tracks (the catalog) or to a better candidate already chosen
    (the gate holds a job's keepers to the same bar against each other). Short of passing
    candidates, the best of the skipped ones fill the list, so the gate still sees them and
    says why it refuses.
    """
    n = request.n_candidates
    thr = request.avoid_threshold
    if thr is None:
        return made[:n]
    chosen: list[_Made] = []
    skipped: list[_Made] = []
    for m in made:
        if len(chosen) == n:
            break
        near = m.candidate.conditioning.get("nearest_avoid", 0.0) > thr
        twin = m.embedding is not None and any(
            e is not None and float(m.embedding @ e) > thr for e in [c.embedding for c in chosen] + list(keepers))
        (skipped if near or twin else chosen).append(m)
    return chosen + skipped[: n - len(chosen)]
