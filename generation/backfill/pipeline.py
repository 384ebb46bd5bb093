"""The backfill pipeline: query -> prior samples -> candidates -> re-rank -> novelty gate -> keepers.

For a job (``job.query``; ``job.request = {"n", "duration_s", "attributes", "like_track_id",
"filters"}``), in order:

1. **Prior samples.** The diffusion prior draws ``K`` audio embeddings for the query's text
   embedding (and the "more like this" track's stored embedding as a second positive, as
   generative search does): where catalog audio answering this query would sit.
2. **Candidates.** The generator makes ``oversample x n`` candidates conditioned on those
   samples, the query and the explicit attributes (the symbolic generator runs its
   candidate search inside), from one seed derived from the job id.
3. **Re-rank** (:func:`~generation.generators.rerank.score_candidates`): every candidate's
   audio embedding against the samples and the query, whichever backend made it.
4. **Novelty gate**, best first: the melody (voice 0 of the score) must not copy a run of
   12 intervals from the corpus (:class:`~generation.backfill.novelty.NgramIndex`), and the
   audio must not sit closer to any catalog or earlier generated track, nor to an earlier
   keeper of the same job, than pairs of different catalog works do (the 99th percentile,
   :func:`~generation.backfill.novelty.different_work_threshold`). The first ``n`` that pass
   are kept; every rejection is reported with its reason.

**Idempotency.** A candidate's index is its seed's offset from the job's seed (for the
symbolic generator: its place in the search's pool over all rounds; for the others, its
place in the request), so a retry of the job, which regenerates the same candidates from the
same seed, gives each the index it had. A candidate an earlier attempt stored is kept again
(the store hands back its track) even if a track added since would now reject it.

Heavy objects (encoder, prior, generator, n-gram index) are built once, by whoever builds the
:class:`BackfillPipeline`; the catalog's vectors are read at the start of every job
(:mod:`generation.backfill.catalog`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Generator as Generator_
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generation.backfill.catalog import Catalog, CatalogVectors
from generation.backfill.keepers import melody_notes, track_metadata
from generation.backfill.novelty import DEFAULT_N, NgramIndex, embedding_gate
from generation.backfill.worker import Keeper, Pipeline, Report
from generation.errors import GenerationError
from generation.generators.base import (
    MAX_CANDIDATES,
    SEED_LIMIT,
    Candidate,
    GenerationRequest,
    Generator,
    StagedGenerator,
)
from index.models import BackfillJob
from index.repo.backfill import Provenance

if TYPE_CHECKING:
    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline

log = logging.getLogger(__name__)

#: Request keys that become generator attributes when the search that queued the job filtered
#: on one value of them (a generated track must pass the filter it was made for).
_FILTER_ATTRIBUTES = {"meter": "meter", "mode": "mode", "tune_type": "tune_type",
                      "ensemble": "ensemble", "instruments": "instrument"}


@dataclass(frozen=True)
class BackfillConfig:
    """How many of everything (defaults measured in ``benchmarks/bench_generator.py``).

    Attributes:
        prior_samples: K, the prior's samples per job (condition and re-ranking targets).
        guidance: the prior's positive guidance (None: its card's default).
        oversample: candidates generated per keeper wanted (the gate rejects some).
        query_weight: share of the query's text embedding in the re-ranking score.
        copy_run: a melody copying this many consecutive (interval, duration) pairs from
            the corpus is rejected (at least the index's ``n``).
        neighbours: nearest tracks recorded in the provenance.
        default_n / max_n: keepers per job when the request does not say / at most.
        default_duration_s: seconds per candidate when the request does not say.
        early_keepers: keepers stored from a staged generator's early list (the first tracks
            a user sees; the rest come from the end of its search).
        query_leads: each candidate list's first keeper is the one closest to the query's text
            (the rest follow the combined score); see :meth:`BackfillPipeline._gate_list`.
    """

    prior_samples: int = 8
    guidance: float | None = None
    oversample: int = 2
    query_weight: float = 0.5
    copy_run: int = DEFAULT_N
    neighbours: int = 5
    default_n: int = 4
    max_n: int = 16
    default_duration_s: float = 20.0
    early_keepers: int = 1
    query_leads: bool = True


@dataclass(frozen=True)
class JobRequest:
    """A job's ``request`` dict, checked (what the API's ``POST /v1/generate`` accepts)."""

    n: int
    duration_s: float
    attributes: dict[str, str] = field(default_factory=dict)
    like_track_id: int | None = None

    @classmethod
    def parse(cls, request: Mapping[str, Any] | None, config: BackfillConfig) -> JobRequest:
        """Read ``{"n", "duration_s", "attributes", "like_track_id", "filters"}``.

        A filter on exactly one value of meter, mode, tune type, ensemble or instrument becomes
        an attribute unless the request sets that attribute itself.

        Raises:
            GenerationError: a value of the wrong type or out of bounds (named).
        """
        r = dict(request or {})
        n = r.get("n", config.default_n)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= config.max_n:
            raise GenerationError(f"request n must be an integer in [1, {config.max_n}], got {n!r}")
        duration = r.get("duration_s", config.default_duration_s)
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise GenerationError(f"request duration_s must be a number, got {duration!r}")
        attrs = r.get("attributes") or {}
        if not isinstance(attrs, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in attrs.items()):
            raise GenerationError(f"request attributes must map strings to strings, got {attrs!r}")
        attrs = {k: v for k, v in attrs.items() if v.strip()}
        for key, name in _FILTER_ATTRIBUTES.items():
            value = (r.get("filters") or {}).get(key) if isinstance(r.get("filters"), Mapping) else None
            values = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []
            if len(values) == 1 and isinstance(values[0], str) and name not in attrs:
                attrs[name] = values[0]
        like = r.get("like_track_id")
        if like is not None and (isinstance(like, bool) or not isinstance(like, int)):
            raise GenerationError(f"request like_track_id must be a track id or null, got {like!r}")
        return cls(n, float(duration), attrs, like)


@dataclass(frozen=True)
class Outcome:
    """One candidate's fate.

    Attributes:
        candidate_index: its stable index in the job (the idempotency key).
        rank: its place in the re-ranked order (0 = best).
        candidate: what the generator made.
        embedding: float32 ``[dim]`` unit audio embedding.
        scores: re-ranking scores (``total``, ``target``, ``query``, the search's own).
        gates: the gate values (``melody``: copied run; ``embedding``: nearest similarity,
            bar, nearest track; ``siblings``: nearest earlier keeper of this job).
        neighbour_track_ids: nearest catalog/generated tracks, nearest first.
        prior_samples: float32 ``[K, dim]``, the prior's samples that conditioned the job.
        rejected: why it was not kept, in words (None: kept).
        rejected_by: which gates rejected it (``melody``, ``embedding``, ``siblings``).
    """

    candidate_index: int
    rank: int
    candidate: Candidate
    embedding: np.ndarray
    scores: dict[str, Any]
    gates: dict[str, Any]
    neighbour_track_ids: list[int]
    prior_samples: np.ndarray
    rejected: str | None = None
    rejected_by: tuple[str, ...] = ()

    @property
    def kept(self) -> bool:
        """Whether it passed the gate."""
        return self.rejected is None


def job_seed(job_id: int) -> int:
    """The generation seed of a job: stable across its retries, unrelated between jobs."""
    return int.from_bytes(hashlib.sha256(f"tunescope-backfill-job:{job_id}".encode()).digest()[:4], "little")


class BackfillPipeline:
    """Prior, generator, re-ranking and novelty gate, held once per process.

    Args:
        encoder: the platform's encoder (text, re-ranking, stored embeddings).
        prior: the diffusion prior trained for ``encoder``.
        generator: any :class:`~generation.generators.base.Generator`.
        ngram: the melodic n-gram index, or the path it is loaded from at the first job (so
            an index built while a worker runs is picked up), or None to skip the melody gate.
        catalog: the catalog's vectors (None: no acoustic gate, e.g. ``tunescope generate``
            without a catalog).
        config: counts and weights.

    Raises:
        GenerationError: a prior trained for another encoder.
    """

    def __init__(self, encoder: Encoder, prior: PriorPipeline, generator: Generator, *,
                 ngram: NgramIndex | Path | None, catalog: Catalog | None = None,
                 config: BackfillConfig | None = None) -> None:
        if prior.encoder_id is not None and prior.encoder_id != encoder.id:
            raise GenerationError(f"the prior was trained for encoder {prior.encoder_id!r}, not {encoder.id!r}")
        self.encoder, self.prior, self.generator, self.catalog = encoder, prior, generator, catalog
        self.config = config or BackfillConfig()
        self._ngram = ngram if isinstance(ngram, NgramIndex) else None
        self._ngram_path = Path(ngram) if isinstance(ngram, str | Path) else None

    def as_pipeline(self) -> Pipeline:
        """The worker's view: ``generate(job)`` and the encoder id of the stored embeddings."""
        return Pipeline(self.generate, self.encoder.id)

    def ngram_index(self) -> NgramIndex | None:
        """The melodic index (loaded on first use; None when the melody gate is off).

        Raises:
            GenerationError: the configured index file does not exist (building it takes
                about 40 CPU-minutes, far too long inside a job: the message says how).
        """
        if self._ngram is None and self._ngram_path is not None:
            if not self._ngram_path.is_file():
                raise GenerationError(
                    f"the novelty gate's melody index {self._ngram_path} does not exist; build it once "
                    "with `tunescope build-novelty-index` (about 40 CPU-minutes: ~5 minutes on 8 cores)")
            self._ngram = NgramIndex.load(self._ngram_path)
            log.info("novelty index %s: %d %d-grams", self._ngram_path, len(self._ngram.hashes), self._ngram.n)
        if self._ngram is not None and self.config.copy_run < self._ngram.n:
            raise GenerationError(f"copy_run {self.config.copy_run} is shorter than the index's n {self._ngram.n}")
        return self._ngram

    def generate(self, job: BackfillJob) -> Iterator[Keeper | Report]:
        """The worker's ``generate_fn``: keepers of ``job``, with progress reports between them."""
        request = JobRequest.parse(job.request, self.config)
        for item in self.run(job.query, request, job_seed(job.id), job_id=job.id):
            if isinstance(item, Report):
                yield item
            elif item.kept:
                yield self.keeper(item, request)

    def keeper(self, outcome: Outcome, request: JobRequest) -> Keeper:
        """A kept outcome as the store takes it (WAV bytes, track fields, provenance)."""
        import io

        import soundfile as sf

        c = outcome.candidate
        buf = io.BytesIO()
        sf.write(buf, c.audio, c.sample_rate, format="WAV", subtype="PCM_16")
        meta = track_metadata(c, request.attributes, outcome.candidate_index)
        prov = Provenance(
            candidate_index=outcome.candidate_index, prompt=str(c.conditioning.get("prompt") or ""),
            generator_id=c.generator_id, weights_id=c.weights_id, seed=c.seed, prior_samples=outcome.prior_samples,
            scores=outcome.scores, gates=outcome.gates, neighbour_track_ids=outcome.neighbour_track_ids)
        return Keeper(buf.getvalue(), meta, outcome.embedding, prov)

    def run(self, query: str, request: JobRequest, seed: int, *,
            job_id: int | None = None) -> Iterator[Outcome | Report]:
        """Generate, re-rank and gate; yield every outcome (kept or not) and progress reports.

        Stops once ``request.n`` candidates were kept.

        Raises:
            GenerationError: a missing n-gram index, a like-track without a vector, a request
                the generator refuses.
        """
        ngram = self.ngram_index()
        yield Report({"stage": "sampling prior", "n_candidates": request.n, "seed": seed})
        text_vec = self.encoder.embed_text([query])[0].astype(np.float32)
        samples = self._prior_samples(text_vec, request, seed)
        cat = self.catalog.vectors(exclude_job=job_id) if self.catalog is not None else None
        done = self.catalog.stored_candidates(job_id) if self.catalog is not None and job_id is not None else set()
        want = min(request.n * self.config.oversample, MAX_CANDIDATES)
        yield Report({"stage": "generating", "generating": want})
        avoid = cat is not None and cat.threshold is not None and len(cat.vectors) > 0
        gen_request = GenerationRequest(text=query, target_embeddings=samples, attributes=request.attributes,
                                        duration_s=request.duration_s, n_candidates=want, seed=seed,
                                        avoid_embeddings=cat.vectors if avoid else None,
                                        avoid_threshold=cat.threshold if avoid else None)
        tally = _Tally()
        kept: list[np.ndarray] = []
        made: set[int] = set()
        st = _JobState(seed, samples, text_vec, cat, ngram, done, kept, set(), tally)
        stages = self._stages(gen_request)
        stage = next(stages, None)
        while stage is not None:
            candidates, final = stage
            made.update((c.seed - seed) % SEED_LIMIT for c in candidates)
            tally.generated = len(made)
            # an early list gives at most `early_keepers` tracks; the search's end gives the rest
            limit = request.n if final else min(request.n, len(kept) + self.config.early_keepers)
            yield Report({"stage": "gating", **tally.progress()})
            yield from self._gate_list(candidates, st, limit)
            if final or len(kept) >= request.n:
                break
            stage = stages.send(list(kept))  # the search avoids twins of what was kept
        yield Report({"stage": "finished", **tally.progress(), "shortfall": request.n - len(kept)})

    def _gate_list(self, candidates: list[Candidate], st: _JobState, limit: int) -> Iterator[Outcome | Report]:
        """Re-rank one list and gate it until ``limit`` keepers, skipping candidates gated before.

        With ``config.query_leads`` the list's lead is the candidate closest to the query's text
        (the first that passes the gate, in that order): generated tracks are ranked among the
        catalog's by that cosine, so this is the one a search shows first. The rest follow the
        combined score, which keeps the prior's reading of the request (where such music sits)
        in the job.
        """
        ranked = self._rerank(candidates, st)
        order = list(range(len(ranked)))
        if self.config.query_leads and ranked and ranked[0][2]["query"] is not None:
            by_query = sorted(order, key=lambda i: -ranked[i][2]["query"])
            lead_target = len(st.kept) + 1
            for i in by_query:
                if len(st.kept) >= min(limit, lead_target):
                    break
                yield from self._gate_one(ranked[i], i, st, lead="query")
        for i in order:
            if len(st.kept) >= limit:
                return
            yield from self._gate_one(ranked[i], i, st)

    def _gate_one(self, item: tuple[Candidate, np.ndarray, dict[str, Any]], rank: int, st: _JobState,
                  lead: str | None = None) -> Iterator[Outcome | Report]:
        """Gate one re-ranked candidate (once per job): its outcome and a progress report."""
        cand, emb, scores = item
        index = (cand.seed - st.seed) % SEED_LIMIT
        if index in st.gated:
            return
        st.gated.add(index)
        gates, neighbours, reasons = self._gate(cand, emb, st.cat, st.kept, st.ngram)
        if reasons and index in st.done:
            gates["note"] = "stored by an earlier attempt; kept although now: " + "; ".join(reasons.values())
            reasons = {}
        extra = {"rank": rank} if lead is None else {"rank": rank, "lead": lead}
        out = Outcome(index, rank, cand, emb, {**scores, **extra}, gates, neighbours, st.samples,
                      "; ".join(reasons.values()) or None, tuple(reasons))
        st.tally.add(out)
        yield Report({"stage": "storing" if out.kept else "gating", **st.tally.progress()})
        yield out
        if out.kept:
            st.kept.append(emb)

    def _stages(self, request: GenerationRequest) -> Generator_[tuple[list[Candidate], bool], Any, None]:
        """``(candidates, final)``: early lists from a staged search, then the final one.

        A staged generator's own iterator is returned, so :meth:`run` can ``send`` it the
        embeddings kept so far.
        """
        if isinstance(self.generator, StagedGenerator):
            return self.generator.generate_staged(request)
        return _single_stage(self.generator, request)

    def _prior_samples(self, text_vec: np.ndarray, request: JobRequest, seed: int) -> np.ndarray:
        positives = [text_vec]
        if request.like_track_id is not None:
            if self.catalog is None:
                raise GenerationError("like_track_id needs a catalog to read the track's vector from")
            positives.append(self.catalog.track_vector(request.like_track_id))
        return self.prior.sample(np.stack(positives), num_samples=self.config.prior_samples, seed=seed,
                                 guidance=self.config.guidance).astype(np.float32)

    def _rerank(self, candidates: list[Candidate], st: _JobState) -> list[tuple[Candidate, np.ndarray, dict[str, Any]]]:
        """``(candidate, embedding, scores)`` best first by the combined score, skipping gated ones.

        A staged search's final list repeats candidates of its early list: each candidate is
        embedded and scored once per job (``st.scored``, by candidate index; the samples and the
        query are the job's, so the scores cannot change).
        """
        from generation.generators.rerank import score_candidates

        todo = [c for c in candidates if (c.seed - st.seed) % SEED_LIMIT not in st.gated]
        fresh = [c for c in todo if (c.seed - st.seed) % SEED_LIMIT not in st.scored]
        if fresh:
            s = score_candidates(fresh, self.encoder, st.samples, st.text_vec, self.config.query_weight)
            for i, c in enumerate(fresh):
                st.scored[(c.seed - st.seed) % SEED_LIMIT] = (s.embeddings[i], {
                    "total": float(s.total[i]), "target": float(s.target[i]),
                    "query": None if s.query is None else float(s.query[i]),
                    "query_weight": self.config.query_weight, "aggregate": "top-quarter",
                    "encoder_id": self.encoder.id})
        out = []
        for c in todo:
            emb, scores = st.scored[(c.seed - st.seed) % SEED_LIMIT]
            out.append((c, emb, {**scores, "search": (c.conditioning.get("search") or {}).get("score")}))
        out.sort(key=lambda row: -row[2]["total"])  # stable: ties keep the generator's order
        return out

    def _gate(self, cand: Candidate, emb: np.ndarray, cat: CatalogVectors | None, kept: list[np.ndarray],
              ngram: NgramIndex | None) -> tuple[dict[str, Any], list[int], dict[str, str]]:
        """(gate values, neighbour track ids, {gate: why it rejected}; empty: passed)."""
        reasons: dict[str, str] = {}
        gates: dict[str, Any] = {"melody": self._melody_gate(cand, ngram, reasons)}
        neighbours: list[int] = []
        if cat is None or cat.threshold is None:
            gates["embedding"] = {"skipped": "no catalog" if cat is None else cat.note}
        else:
            g = embedding_gate(emb, cat.vectors, cat.threshold, k=self.config.neighbours)
            neighbours = [int(cat.ids[j]) for j in g.nearest]
            gates["embedding"] = {"passed": g.passed, "max_similarity": round(g.max_similarity, 5),
                                  "threshold": round(g.threshold, 5), "nearest_track_id": neighbours[0] if
                                  neighbours else None, "catalog_tracks": cat.catalog_tracks,
                                  "compared": len(cat.ids)}
            if not g.passed:
                reasons["embedding"] = (f"sounds like track {neighbours[0]} (cosine {g.max_similarity:.3f} "
                                        f"> bar {g.threshold:.3f})")
            if kept:
                sims = np.stack(kept) @ emb
                j = int(np.argmax(sims))
                gates["siblings"] = {"max_similarity": round(float(sims[j]), 5), "nearest_keeper": j}
                if sims[j] > cat.threshold:
                    reasons["siblings"] = (f"sounds like keeper {j + 1} of this job (cosine {sims[j]:.3f} > "
                                           f"bar {cat.threshold:.3f})")
        return gates, neighbours, reasons

    def _melody_gate(self, cand: Candidate, ngram: NgramIndex | None, reasons: dict[str, str]) -> dict[str, Any]:
        if ngram is None:
            return {"skipped": "melody gate off"}
        notes = melody_notes(cand.score)
        if notes is None:
            return {"skipped": "no symbolic score (audio-only generator)"}
        run = ngram.longest_copied_run(notes)
        passed = run < self.config.copy_run
        if not passed:
            reasons["melody"] = (f"copies a corpus melody ({run} consecutive intervals; at most "
                                 f"{self.config.copy_run - 1} allowed)")
        return {"passed": passed, "copied_run": run, "limit": self.config.copy_run - 1,
                "notes": int(len(notes[0])), "index_ngrams": int(len(ngram.hashes))}


def _single_stage(generator: Generator, request: GenerationRequest
                  ) -> Generator_[tuple[list[Candidate], bool], Any, None]:
    """A plain generator's candidates as one final list."""
    yield generator.generate(request), True


@dataclass
class _JobState:
    """What gating a job's candidate lists shares across the lists (one job, one thread)."""

    seed: int
    samples: np.ndarray
    text_vec: np.ndarray
    cat: CatalogVectors | None
    ngram: NgramIndex | None
    done: set[int]
    kept: list[np.ndarray]
    gated: set[int]
    tally: _Tally
    scored: dict[int, tuple[np.ndarray, dict[str, Any]]] = field(default_factory=dict)  # by candidate index


@dataclass
class _Tally:
    """Counts for the job's progress: generated, kept, rejected and why."""

    generated: int = 0
    kept: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def add(self, out: Outcome) -> None:
        if out.kept:
            self.kept += 1
            return
        self.rejected += 1
        self.reasons.update(out.rejected_by)
        if len(self.rejections) < 32:
            self.rejections.append({"candidate_index": out.candidate_index, "rank": out.rank,
                                    "reason": out.rejected})

    def progress(self) -> dict[str, Any]:
        return {"generated": self.generated, "kept": self.kept, "rejected": self.rejected,
                "rejected_by": dict(self.reasons), "rejections": list(self.rejections)}
