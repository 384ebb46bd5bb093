"""``tunescope eval-backfill``: make holes in a copy of the catalog, then try to fill them.

A *hole* removes every track of one kind (every waltz, every hornpipe, every jig, every string
quartet, every minor-key piece, every bagpipe track) from an in-memory copy of the catalog's
embedding matrix; the database and the index are never touched. Queries are written the way
people ask ("a gentle waltz to dance to", "a sad, melancholic melody"), not in the demo
catalog's caption templates. For each hole:

- **hole queries** ask for what was removed: nothing relevant remains;
- **covered queries** are the other queries whose relevant tracks still number >= 5 in the
  holed catalog.

Measured in one run:

1. **Weak-match detector** (:mod:`retrieval.search.weak_match`): its signals on every (hole,
   query) pair; AUROC of hole vs covered, *leave-one-hole-out* (fitted on the other holes,
   scored on this one, so no hole's own queries calibrate its verdict), next to the
   uncalibrated ``top1 < 0.3`` rule. ``--fit-detector`` then fits on all pairs and writes the
   detector file the search service loads.
2. **Generation** on each hole query with the backfill path: the prior's samples for the query
   condition the symbolic generator's candidate search; every candidate faces the novelty
   gate (acoustic: the holed catalog's 99th percentile of different-work similarity; melodic:
   no copied run of 12 (interval, duration) pairs from the corpus).
   - **win rate**: the best kept candidate's cosine to the query above the best remaining
     catalog track's; **ceiling ratio**: it over the best *removed* real track's cosine;
   - **attribute control**: what the query asks (meter class, mode, tempo class, ensemble),
     read from the generated score (the bars' meter, the mode by Krumhansl–Kessler over the
     melody's notes, the tempo and ensemble it was rendered with) and re-estimated from the
     audio (mode from the chroma's key profile, tempo from the onset autocorrelation, meter
     class and ensemble by the encoder's zero-shot choice among the alternatives);
   - **novelty**: share of candidates above the gate, longest copied melodic run;
   - **diversity**: mean pairwise cosine distance of a job's keepers vs the top real tracks
     (full catalog) for the same query;
   - **KAD** (unbiased MMD², Gaussian kernel at the median distance, x100) between each hole's
     keepers and its removed real tracks of the held-out splits; **symbolic statistics**
     (pitch-class entropy, scale and groove consistency) against corpus melodies.
3. **Baselines** in the same run, each scored the same way: nearest-track retrieval (the best
   remaining tracks: ceiling on adherence to the catalog, zero novelty), a naive crossfade of
   the two nearest remaining tracks, a second-order n-gram melody model over the corpus
   rendered like the generator's, the unconditional generator, and the generator with random
   attributes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from generation.backfill.eval_holes import (
    HOLES,
    QUERIES,
    Catalog,
    Query,
    detector_auroc,
    detector_rows,
    load_catalog,
)
from generation.backfill.eval_measures import (
    AttributeProbes,
    AudioReader,
    NgramMelodyModel,
    _crossfade,
    _melody_pairs,
    _metadata_attributes,
    corpus_melodies,
    kad,
    mean_pairwise_distance,
    reader_accuracy,
    score_attributes,
)
from generation.backfill.symbolic_stats import events_of_score, melody_stats, summarise
from generation.symbolic.render import Events

if TYPE_CHECKING:
    from generation.backfill.novelty import NgramIndex
    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline

log = logging.getLogger(__name__)
Row = Mapping[str, Any]
Pred = Callable[[Row], bool]


# ---------------------------------------------------------------------- the run

@dataclass
class Method:
    """What one method produced for one hole query."""

    name: str
    embeddings: list[np.ndarray] = field(default_factory=list)  # kept items
    all_embeddings: list[np.ndarray] = field(default_factory=list)
    above_gate: list[bool] = field(default_factory=list)
    copied_runs: list[int] = field(default_factory=list)
    score_attrs: list[dict[str, str]] = field(default_factory=list)
    audio_attrs: list[dict[str, str]] = field(default_factory=list)
    stats: list[dict[str, float]] = field(default_factory=list)
    rejected_by: list[tuple[str, ...]] = field(default_factory=list)  # per item: gates that refused it
    search_above_bar: float = float("nan")  # share of the search's own candidates above the bar


@dataclass
class EvalConfig:
    """Sizes of the run (defaults: the figures in RESULTS.md)."""

    n_candidates: int = 4
    duration_s: float = 20.0
    prior_samples: int = 8
    search_rounds: int = 6
    query_leads: bool = True  # each list's first keeper: the candidate closest to the query
    pool: int | None = None  # candidates per search round (None: the generator's default)
    query_weight: float = 0.5  # the query's share in the generator's and re-ranking's score
    oversample: int = 2  # candidates generated per keeper wanted
    search_soundfonts: bool = False  # the generator also searches every training soundfont
    search_targets: bool = False  # the generator refits which prior sample conditions a candidate
    corpus_pieces: int = 300
    max_queries_per_hole: int | None = None  # None: every query aimed at the hole
    seed: int = 0
    holes: tuple[str, ...] = HOLES
    baselines: bool = True
    generate: bool = True  # False: the detector part only (no generator, no novelty index)


def run_eval(database_url: str, encoder: Encoder, prior: PriorPipeline, ngram: NgramIndex | None, *,
             config: EvalConfig | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The whole evaluation (module docstring); returns a JSON-ready report."""
    cfg = config or EvalConfig()
    t0 = time.perf_counter()
    say = progress or (lambda stage, done, total: None)
    cat = load_catalog(database_url, encoder.id, encoder.dim)
    text_vecs, samples = _query_vectors(encoder, prior, cfg)
    det_rows = detector_rows(cat, text_vecs, samples, cfg.holes)
    detector = detector_auroc(det_rows, encoder.id)
    head = {"catalog_tracks": len(cat.ids), "encoder_id": encoder.id, "config": cfg.__dict__,
            "detector": detector, "detector_rows": [r.__dict__ for r in det_rows]}
    if not cfg.generate or ngram is None:
        return {**head, "queries": [], "summary": {}, "corpus_stats": {}, "seconds": time.perf_counter() - t0}

    gen, tools, corpus_stats, reader_acc = _load_tools(cfg, encoder, ngram, cat)
    head["reader"] = reader_acc
    hole_queries = [(h, q) for h in cfg.holes
                    for q in [q for q in QUERIES if q.area == h][: cfg.max_queries_per_hole]]
    per_query: list[dict[str, Any]] = []
    methods_by_hole: dict[str, dict[str, list[Method]]] = {}
    for qi, (hole, q) in enumerate(hole_queries):
        say("generate", qi, len(hole_queries))
        figures, found = _eval_query(tools, cat, gen, prior, text_vecs[q.text], hole, q, cfg.seed + 1000 * qi)
        for name, me in found.items():
            methods_by_hole.setdefault(hole, {}).setdefault(name, []).append(me)
        per_query.append(figures)
    say("generate", len(hole_queries), len(hole_queries))

    held = np.array([r.get("split") in ("validation", "test") for r in cat.rows])
    heldout = {h: cat.vectors[cat.mask(h) & held] for h in cfg.holes}
    summary = _summarise(per_query, methods_by_hole, heldout, corpus_stats)
    return {**head, "queries": per_query, "summary": summary, "corpus_stats": corpus_stats,
            "seconds": time.perf_counter() - t0}


def _eval_query(tools: _Tools, cat: Catalog, gen: Any, prior: PriorPipeline, qv: np.ndarray, hole: str,
                q: Query, seed: int) -> tuple[dict[str, Any], dict[str, Method]]:
    """One hole query: backfill over the holed catalog, the baselines, and the query's figures."""
    from generation.backfill.novelty import different_work_threshold
    from generation.backfill.pipeline import BackfillConfig, BackfillPipeline, JobRequest, Outcome

    cfg, encoder, ngram = tools.cfg, tools.encoder, tools.ngram
    gone = cat.mask(hole)
    keep = ~gone
    m_left, m_gone = cat.vectors[keep], cat.vectors[gone]
    thr = different_work_threshold(m_left, [r["piece_id"] for r, k in zip(cat.rows, keep, strict=True) if k])
    left_scores = m_left @ qv
    best_left = float(left_scores.max())
    best_gone = float((m_gone @ qv).max()) if len(m_gone) else float("nan")
    found: dict[str, Method] = {}
    # The production path: BackfillPipeline.run over the holed catalog (its gate, its
    # oversampling, its re-ranking), exactly what a worker does for a job.
    pipe = BackfillPipeline(encoder, prior, gen, ngram=ngram, catalog=_HoledCatalog(cat.ids[keep], m_left, thr),
                            config=BackfillConfig(cfg.prior_samples, query_weight=cfg.query_weight,
                                                  oversample=cfg.oversample, query_leads=cfg.query_leads))
    outcomes = [o for o in pipe.run(q.text, JobRequest(cfg.n_candidates, cfg.duration_s), seed)
                if isinstance(o, Outcome)]
    found["generated"] = _judge_outcomes(outcomes, tools.reader, ngram)
    if cfg.baselines:
        found.update(_baselines(tools, cat, keep, m_left, thr, left_scores, seed))
    full_top = np.argsort(-(cat.vectors @ qv))[: cfg.n_candidates]
    figures = {
        "hole": hole, "query": q.text, "expect": dict(q.expect),
        "best_remaining": best_left, "best_removed": best_gone, "gate_threshold": thr,
        "real_diversity": mean_pairwise_distance(cat.vectors[full_top]),
        "methods": {name: _query_figures(me, qv, best_left, best_gone, q.expect) for name, me in found.items()}}
    return figures, found


@dataclass
class _Tools:
    """What every hole query's baselines share (loaded once per run)."""

    cfg: EvalConfig
    encoder: Any
    ngram: Any
    reader: AudioReader
    uncond: Any
    ngram_model: NgramMelodyModel | None
    rng: np.random.Generator


def _query_vectors(encoder: Encoder, prior: PriorPipeline, cfg: EvalConfig
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each query's text embedding and the prior's samples for it (seeded per query)."""
    texts = [q.text for q in QUERIES]
    tv = encoder.embed_text(texts)
    samples = {t: np.asarray(prior.sample(tv[i][None], num_samples=cfg.prior_samples,
                                          seed=cfg.seed + i), np.float32) for i, t in enumerate(texts)}
    return {t: tv[i] for i, t in enumerate(texts)}, samples


def _fit_reader(encoder: Encoder, cat: Catalog, ensembles: Sequence[str]
                ) -> tuple[AudioReader, dict[str, dict[str, float]]]:
    """The audio reader with probes fitted on the catalog's training split, and its accuracy.

    The accuracy is on the other splits' real tracks: the instrument's own error, printed
    beside what it reads of generated audio.

    The whole catalog is used, holes included: the reader is an instrument that must know what
    a waltz sounds like; the generator under test never sees it.
    """
    train = np.array([r.get("split") == "train" for r in cat.rows], bool)
    if train.sum() < 20 or (~train).sum() < 20:  # no split to fit and check on: rules only
        return AudioReader(encoder, ensembles), {}
    labels = {k: [_metadata_attributes(r)[k] for r, t in zip(cat.rows, train, strict=True) if t]
              for k in AttributeProbes.ATTRIBUTES}
    reader = AudioReader(encoder, ensembles, AttributeProbes.fit(cat.vectors[train], labels))
    others = [r for r, t in zip(cat.rows, train, strict=True) if not t]
    return reader, reader_accuracy(reader, cat.vectors[~train], others)


def _load_tools(cfg: EvalConfig, encoder: Encoder, ngram: NgramIndex, cat: Catalog
                ) -> tuple[Any, _Tools, dict[str, float], dict[str, dict[str, float]]]:
    """The generator under test, the baselines' shared tools, the corpus's statistics.

    And the audio reader's accuracy on real held-out tracks.
    """
    from generation.generators.symbolic import SymbolicGenerator
    from generation.symbolic import tokens as T

    gen = SymbolicGenerator(encoder=encoder, condition="auto", search_rounds=cfg.search_rounds,
                            pool=cfg.pool, query_weight=cfg.query_weight,
                            search_targets=cfg.search_targets,
                            **({"soundfonts": None} if cfg.search_soundfonts else {}))
    uncond = SymbolicGenerator(encoder=encoder, condition="none", search_rounds=1,
                               pool=cfg.n_candidates)
    reader, reader_acc = _fit_reader(encoder, cat, [e for e in T.ENSEMBLES if e != "unknown"])
    corpus = corpus_melodies(cfg.corpus_pieces, cfg.seed) if cfg.baselines else []
    ngram_model = NgramMelodyModel([_melody_pairs(e) for e in corpus]) if corpus else None
    corpus_stats = summarise([melody_stats(e) for e in corpus]) if corpus else {}
    tools = _Tools(cfg, encoder, ngram, reader, uncond, ngram_model, np.random.default_rng(cfg.seed))
    return gen, tools, corpus_stats, reader_acc


def _baselines(tools: _Tools, cat: Catalog, keep: np.ndarray, m_left: np.ndarray, thr: float,
               left_scores: np.ndarray, seed: int) -> dict[str, Method]:
    """The five baselines for one hole query, each judged like the generator's candidates."""
    from generation.backfill.novelty import embedding_gate
    from generation.generators.base import GenerationRequest
    from generation.generators.rerank import embed_candidates
    from generation.symbolic import tokens as T

    cfg, encoder, ngram, reader = tools.cfg, tools.encoder, tools.ngram, tools.reader
    uncond, ngram_model, rng = tools.uncond, tools.ngram_model, tools.rng
    found: dict[str, Method] = {}
    top = np.argsort(-left_scores)[: cfg.n_candidates + 1]
    near = Method("nearest track")
    for j in top[: cfg.n_candidates]:
        near.embeddings.append(m_left[j])
        near.all_embeddings.append(m_left[j])
        near.above_gate.append(True)  # a catalog track is, by definition, not new
        near.copied_runs.append(0)
        near.score_attrs.append(_metadata_attributes(
            [r for r, k in zip(cat.rows, keep, strict=True) if k][int(j)]))
    found["nearest track"] = near
    paths = [p for p, k in zip(cat.audio_paths, keep, strict=True) if k]
    mixes, mixes_sr = [], encoder.sample_rate
    for a, b in zip(top[:-1], top[1:], strict=False):
        wave = _crossfade(paths[int(a)], paths[int(b)], mixes_sr, cfg.duration_s)
        if wave is not None:
            mixes.append(wave)
    if mixes:
        emb = encoder.embed_audio(mixes)
        cf = Method("crossfade of two neighbours")
        for w, e in zip(mixes, emb, strict=True):
            gate = embedding_gate(e, m_left, thr)
            cf.all_embeddings.append(e)
            cf.above_gate.append(not gate.passed)
            cf.copied_runs.append(0)
            if gate.passed:
                cf.embeddings.append(e)
            cf.audio_attrs.append(reader.read(w, mixes_sr, e))
        found["crossfade of two neighbours"] = cf
    if ngram_model is not None:
        ng_cands = _ngram_candidates(ngram_model, rng, cfg, seed)
        found["n-gram model"] = _judge("n-gram model", ng_cands, encoder.embed_audio([c.audio for c in ng_cands]),
                                       m_left, thr, ngram, reader)
    uc = uncond.generate(GenerationRequest(text=None, duration_s=cfg.duration_s,
                                           n_candidates=cfg.n_candidates, seed=seed))
    found["unconditional model"] = _judge("unconditional model", uc, embed_candidates(uc, encoder),
                                          m_left, thr, ngram, reader)
    rand_attrs = {"meter": str(rng.choice(["2/4", "3/4", "4/4", "6/8"])),
                  "mode": str(rng.choice(["major", "minor"])),
                  "tempo_class": str(rng.choice(["slow", "moderate", "fast"])),
                  "ensemble": str(rng.choice([e for e in T.ENSEMBLES if e != "unknown"]))}
    ra = uncond.generate(GenerationRequest(text=None, attributes=rand_attrs,
                                           duration_s=cfg.duration_s,
                                           n_candidates=cfg.n_candidates, seed=seed))
    found["random attributes"] = _judge("random attributes", ra, embed_candidates(ra, encoder),
                                        m_left, thr, ngram, reader)
    return found


def _ngram_candidates(model: NgramMelodyModel, rng: np.random.Generator, cfg: EvalConfig,
                      seed: int) -> list[_SimpleCandidate]:
    """n-gram melodies rendered the way the generator renders (a melody ensemble, 80-130 bpm)."""
    from generation.generators.symbolic_render import Performance, play

    out = []
    for j in range(cfg.n_candidates):
        ev = model.sample(64.0, seed + j)
        ens = str(rng.choice(["solo fiddle", "accordion", "solo flute", "solo piano"]))
        perf = Performance(ensemble=ens, bpm=float(rng.uniform(80, 130)), transpose=0, seed=seed + j)
        audio, qbpm, _, tr = play(ev, "4/4", False, perf, cfg.duration_s, 22050)
        out.append(_SimpleCandidate(audio, 22050, _score_of(ev, "4/4", qbpm, tr),
                                    {"ensemble": ens, "tempo_class": _tempo_class(perf.bpm)}))
    return out


@dataclass
class _HoledCatalog:
    """The pipeline's :class:`~generation.backfill.catalog.Catalog` over the holed matrix."""

    ids: np.ndarray
    matrix: np.ndarray
    threshold: float

    def vectors(self, exclude_job: int | None = None) -> Any:
        from generation.backfill.catalog import CatalogVectors

        return CatalogVectors(self.ids, self.matrix, self.threshold, catalog_tracks=len(self.ids))

    def track_vector(self, track_id: int) -> np.ndarray:
        return self.matrix[int(np.flatnonzero(self.ids == track_id)[0])]

    def stored_candidates(self, job_id: int) -> set[int]:
        return set()


def _judge(name: str, cands: Sequence[Any], emb: np.ndarray, m_left: np.ndarray, thr: float,
           ngram: NgramIndex, reader: AudioReader) -> Method:
    """A baseline's items through the same gate as the pipeline's (acoustic, then melodic)."""
    from generation.backfill.keepers import melody_notes
    from generation.backfill.novelty import embedding_gate

    me = Method(name)
    for c, e in zip(cands, emb, strict=True):
        gate = embedding_gate(e, m_left, thr)
        notes = melody_notes(c.score) if c.score else None  # voice 0, as the pipeline
        run = ngram.longest_copied_run(notes) if notes is not None else 0
        bad = (not gate.passed) or run >= ngram.n
        me.all_embeddings.append(e)
        me.above_gate.append(bad)
        me.copied_runs.append(run)
        if not bad:
            me.embeddings.append(e)
        if c.score:
            me.score_attrs.append(score_attributes(c))
            me.stats.append(melody_stats(events_of_score(c.score)))
        me.audio_attrs.append(reader.read(c.audio, c.sample_rate, e))
    return me


def _judge_outcomes(outcomes: Sequence[Any], reader: AudioReader, ngram: NgramIndex) -> Method:
    """A :class:`Method` from the pipeline's outcomes: its own gate verdicts, kept or not."""
    from generation.backfill.keepers import melody_notes

    me = Method("generated")
    search = (outcomes[0].candidate.conditioning.get("search") or {}) if outcomes else {}
    if search.get("made") and search.get("above_bar") is not None:
        me.search_above_bar = search["above_bar"] / search["made"]
    for o in outcomes:
        c = o.candidate
        notes = melody_notes(c.score)
        me.all_embeddings.append(o.embedding)
        me.above_gate.append(not o.kept)
        me.rejected_by.append(tuple(o.rejected_by))
        me.copied_runs.append(ngram.longest_copied_run(notes) if notes is not None else 0)
        if o.kept:
            me.embeddings.append(o.embedding)
        me.score_attrs.append(score_attributes(c))
        me.stats.append(melody_stats(events_of_score(c.score)))
        me.audio_attrs.append(reader.read(c.audio, c.sample_rate, o.embedding))
    return me


@dataclass(frozen=True)
class _SimpleCandidate:
    audio: np.ndarray
    sample_rate: int
    score: dict[str, Any]
    conditioning: dict[str, Any]


def _tempo_class(bpm: float) -> str:
    from retrieval.captions import tempo_bucket

    return tempo_bucket(bpm)


def _score_of(ev: Events, meter: str, qbpm: float, transpose: int) -> dict[str, Any]:
    from generation.generators.symbolic_render import score_json

    return score_json(ev, [], meter, qbpm, transpose)


def _query_figures(me: Method, qv: np.ndarray, best_left: float, best_gone: float,
                   expect: Mapping[str, str]) -> dict[str, Any]:
    kept = np.array(me.embeddings) if me.embeddings else np.zeros((0, len(qv)), np.float32)
    best = float((kept @ qv).max()) if len(kept) else float("nan")

    def honoured(attrs: list[dict[str, str]]) -> float:
        hits = [a.get(k) == v for a in attrs for k, v in expect.items() if k in a and a.get(k)]
        return float(np.mean(hits)) if hits else float("nan")

    return {"kept": len(kept), "made": len(me.all_embeddings), "best_cos": best,
            "win": bool(best > best_left + 1e-6) if len(kept) else False,  # a tie is no win
            "ceiling_ratio": best / best_gone if len(kept) and best_gone > 0 else float("nan"),
            "above_gate": float(np.mean(me.above_gate)) if me.above_gate else float("nan"),
            "search_above_bar": me.search_above_bar,
            **{f"rejected_{g}": float(np.mean([g in r for r in me.rejected_by]))
               for g in ("embedding", "siblings", "melody") if me.rejected_by},
            "longest_copied_run": int(max(me.copied_runs, default=0)),
            "attr_score": honoured(me.score_attrs), "attr_audio": honoured(me.audio_attrs),
            "diversity": mean_pairwise_distance(kept)}


def _summarise(per_query: list[dict[str, Any]], by_hole: dict[str, dict[str, list[Method]]],
               heldout: Mapping[str, np.ndarray], corpus_stats: Mapping[str, float]
               ) -> dict[str, dict[str, float]]:
    names = list(per_query[0]["methods"]) if per_query else []
    out: dict[str, dict[str, float]] = {}
    for name in names:
        rows = [q["methods"][name] for q in per_query if name in q["methods"]]

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            v = np.array([r.get(key, np.nan) for r in rows], np.float64)
            v = v[np.isfinite(v)]
            return float(v.mean()) if len(v) else float("nan")

        kads = []
        stats: list[dict[str, float]] = []
        for hole, methods in by_hole.items():
            ms = methods.get(name, [])
            emb = [e for m in ms for e in m.embeddings]
            stats += [s for m in ms for s in m.stats]
            if len(emb) >= 2 and len(heldout[hole]) >= 2:
                kads.append(kad(np.array(emb), heldout[hole]))
        st = summarise(stats) if stats else {}
        out[name] = {
            "win_rate": float(np.mean([r["win"] for r in rows])), "ceiling_ratio": mean("ceiling_ratio"),
            "attr_score": mean("attr_score"), "attr_audio": mean("attr_audio"),
            "above_gate": mean("above_gate"), "search_above_bar": mean("search_above_bar"),
            **{f"rejected_{g}": mean(f"rejected_{g}") for g in ("embedding", "siblings", "melody")
               if any(f"rejected_{g}" in r for r in rows)},
            "longest_copied_run": float(max((r["longest_copied_run"] for r in rows), default=0)),
            "diversity": mean("diversity"),
            "real_diversity": float(np.nanmean([q["real_diversity"] for q in per_query])),
            "kad": float(np.nanmean(kads)) if kads else float("nan"),
            **{f"{k}_gap": abs(st[k] - corpus_stats[k]) for k in st if k in corpus_stats},
            **st}
    return out
