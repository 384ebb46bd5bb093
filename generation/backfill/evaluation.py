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

from generation.backfill.symbolic_stats import events_of_score, melody_stats, summarise
from generation.symbolic.render import Events

if TYPE_CHECKING:
    from generation.backfill.novelty import NgramIndex
    from generation.generators.base import Candidate
    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline

log = logging.getLogger(__name__)
Row = Mapping[str, Any]
Pred = Callable[[Row], bool]


def _mode(r: Row) -> str | None:
    from retrieval.captions import mode_family

    return mode_family(r.get("mode"))


#: What each hole removes (and what its queries count as relevant).
PREDICATES: dict[str, Pred] = {
    "waltz": lambda r: r.get("tune_type") == "waltz",
    "hornpipe": lambda r: r.get("tune_type") == "hornpipe",
    "jig": lambda r: r.get("tune_type") == "jig",
    "string quartet": lambda r: r.get("ensemble") == "string quartet",
    "minor key": lambda r: _mode(r) == "minor",
    "bagpipes": lambda r: r.get("ensemble") == "bagpipes"
    or any("bagpipe" in str(i) for i in r.get("instruments") or ()),
    # covered-only areas (never made into holes)
    "reel": lambda r: r.get("tune_type") == "reel",
    "march": lambda r: r.get("tune_type") == "march",
    "chorale": lambda r: r.get("tune_type") == "chorale",
    "slip jig": lambda r: r.get("tune_type") == "slip jig",
    "folk song": lambda r: r.get("tune_type") == "folk song",
    "tin whistle": lambda r: r.get("ensemble") == "tin whistle",
    "church organ": lambda r: r.get("ensemble") == "church organ",
    "major key": lambda r: _mode(r) == "major",
}
HOLES = ("waltz", "hornpipe", "jig", "string quartet", "minor key", "bagpipes")


@dataclass(frozen=True)
class Query:
    """A request and what it asks for: its area (predicate) and the attributes to honour."""

    text: str
    area: str
    expect: Mapping[str, str] = field(default_factory=dict)


#: Phrased like requests, not like the catalog's captions; ``expect`` uses the generator's
#: vocabulary: meter *class* (what is heard), mode family, tempo class, ensemble.
QUERIES: tuple[Query, ...] = (
    Query("a waltz", "waltz", {"meter": "triple"}),
    Query("a gentle waltz to dance to", "waltz", {"meter": "triple"}),
    Query("an old-time waltz on the accordion", "waltz", {"meter": "triple", "ensemble": "accordion"}),
    Query("a hornpipe", "hornpipe", {"meter": "duple"}),
    Query("a sailor's hornpipe on the fiddle", "hornpipe", {"meter": "duple", "ensemble": "solo fiddle"}),
    Query("a jig", "jig", {"meter": "compound"}),
    Query("a lively jig for a ceili", "jig", {"meter": "compound", "tempo_class": "fast"}),
    Query("a string quartet", "string quartet", {"ensemble": "string quartet"}),
    Query("chamber music for two violins, viola and cello", "string quartet",
          {"ensemble": "string quartet"}),
    Query("a tune in a minor key", "minor key", {"mode": "minor"}),
    Query("a sad, melancholic melody", "minor key", {"mode": "minor"}),
    Query("a mournful slow air in a minor key", "minor key", {"mode": "minor", "tempo_class": "slow"}),
    Query("bagpipe music", "bagpipes", {"ensemble": "bagpipes"}),
    Query("a tune on the highland pipes", "bagpipes", {"ensemble": "bagpipes"}),
    Query("a reel on the fiddle", "reel", {"meter": "duple", "ensemble": "solo fiddle"}),
    Query("a brisk march", "march", {"meter": "duple", "tempo_class": "fast"}),
    Query("a hymn-like chorale for choir", "chorale", {"ensemble": "choir"}),
    Query("a slip jig", "slip jig", {"meter": "compound"}),
    Query("a simple folk song", "folk song", {}),
    Query("a tune on the tin whistle", "tin whistle", {"ensemble": "tin whistle"}),
    Query("a piece for church organ", "church organ", {"ensemble": "church organ"}),
    Query("a cheerful tune in a major key", "major key", {"mode": "major"}),
)
MIN_COVERED = 5


@dataclass
class Catalog:
    """The catalog as the evaluation sees it: ids, unit vectors, metadata rows."""

    ids: np.ndarray
    vectors: np.ndarray
    rows: list[dict[str, Any]]
    audio_paths: list[str | None]

    def mask(self, area: str) -> np.ndarray:
        """Boolean ``[n]``: the tracks of ``area`` (a :data:`PREDICATES` name)."""
        pred = PREDICATES[area]
        return np.array([bool(pred(r)) for r in self.rows], bool)


def load_catalog(database_url: str, encoder_id: str, dim: int) -> Catalog:
    """Every catalog-origin track with an embedding of ``encoder_id`` (generated ones left out)."""
    from sqlalchemy import select

    from index.db import open_catalog, session_scope
    from index.models import Track
    from index.vectors import load_embeddings

    factory = open_catalog(database_url)
    with session_scope(factory) as s:
        ids, vecs = load_embeddings(s, encoder_id, dim)
        tracks = {t.id: t for t in s.scalars(select(Track).where(Track.origin == "catalog"))}
        keep = [i for i, t in enumerate(ids) if int(t) in tracks]
        rows, paths = [], []
        for i in keep:
            t = tracks[int(ids[i])]
            rows.append({"id": t.id, "piece_id": t.piece_id, "tune_type": t.tune_type,
                         "ensemble": t.ensemble, "mode": t.mode, "meter": t.meter,
                         "tempo_bpm": t.tempo_bpm, "instruments": list(t.instruments or []),
                         "split": t.split, "collection": t.collection})
            paths.append(t.source_path)
    if not keep:
        raise ValueError(f"no catalog track has an embedding of {encoder_id!r} in {database_url}")
    v = np.asarray(vecs[keep], np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
    return Catalog(np.asarray(ids[keep], np.int64), v, rows, paths)


# ---------------------------------------------------------------------- detector

@dataclass
class DetectorRow:
    """One (hole, query) pair: its label and the detector's signals on the holed catalog."""

    hole: str
    query: str
    weak: bool
    signals: dict[str, float]


def detector_rows(cat: Catalog, text_vecs: Mapping[str, np.ndarray],
                  prior_samples: Mapping[str, np.ndarray],
                  holes: Sequence[str] = HOLES) -> list[DetectorRow]:
    """Signals of every hole query (weak) and covered query (>= MIN_COVERED relevant remain)."""
    from retrieval.search.weak_match import signals_of

    out = []
    for hole in holes:
        keep = ~cat.mask(hole)
        m = cat.vectors[keep]
        for q in QUERIES:
            relevant_left = int((cat.mask(q.area) & keep).sum())
            if q.area == hole:
                weak = True
            elif relevant_left >= MIN_COVERED:
                weak = False
            else:
                continue  # neither a clean hole nor covered (e.g. minor waltzes in the minor hole)
            scores = m @ text_vecs[q.text]
            top = np.sort(scores)[::-1][:10]
            nn = (prior_samples[q.text] @ m.T).max(1)
            out.append(DetectorRow(hole, q.text, weak, signals_of(top, nn)))
    return out


def detector_auroc(rows: Sequence[DetectorRow], encoder_id: str) -> dict[str, float]:
    """Leave-one-hole-out AUROC of the fitted rule, with and without the prior's signal.

    Next to it, the uncalibrated ``top1 < 0.3`` rule's. With a single hole there is nothing to
    fit on but the hole itself, so the fitted figures are NaN rather than in-sample.
    """
    from retrieval.search.weak_match import WeakMatchDetector, auroc, fit_detector

    labels = [r.weak for r in rows]
    loo_full, loo_scores = [0.0] * len(rows), [0.0] * len(rows)
    fallback = WeakMatchDetector.fallback(encoder_id)
    for hole in sorted({r.hole for r in rows}):
        train = [r for r in rows if r.hole != hole]
        if len({r.weak for r in train}) < 2:  # one hole only: nothing to fit on but itself
            loo_full = loo_scores = [float("nan")] * len(rows)
            break
        det = fit_detector([r.signals for r in train], [r.weak for r in train], encoder_id=encoder_id)
        for i, r in enumerate(rows):
            if r.hole == hole:
                loo_full[i] = det.probability(r.signals)
                loo_scores[i] = det.probability({k: v for k, v in r.signals.items() if k != "prior_nn"})
    fb = [fallback.probability(r.signals) for r in rows]
    return {"auroc": auroc(loo_full, labels), "auroc_scores_only": auroc(loo_scores, labels),
            "auroc_top1_rule": auroc(fb, labels),
            "accuracy": float(np.mean([(p >= 0.5) == y for p, y in zip(loo_full, labels, strict=True)]))
            if np.isfinite(loo_full).all() else float("nan"),
            "hole_queries": int(sum(labels)), "covered_queries": int(len(labels) - sum(labels))}


# ---------------------------------------------------------------------- audio re-estimation

_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


class AudioReader:
    """Attributes re-estimated from audio alone (no score): what a listener could check.

    Mode from the mean chroma's best Krumhansl–Kessler key; tempo from the comb salience of
    the onset envelope's autocorrelation (heard beats of 0.35–1.1 s; a period whose half is
    just as periodic loses: it is a bar, not a beat); meter class and ensemble
    by the encoder's zero-shot choice among the alternatives' descriptions.
    """

    METER_TEXT = {"duple": "a tune in duple time, two or four beats to the bar",
                  "triple": "a tune in triple time, three beats to the bar, like a waltz",
                  "compound": "a tune in compound time, 6/8, like a jig"}

    def __init__(self, encoder: Encoder, ensembles: Sequence[str]) -> None:
        self.encoder = encoder
        self.ensembles = list(ensembles)
        self._meter = encoder.embed_text(list(self.METER_TEXT.values()))
        self._ens = encoder.embed_text([f"music played on {e}" for e in self.ensembles])

    def read(self, audio: np.ndarray, sample_rate: int, embedding: np.ndarray) -> dict[str, str]:
        """Mode, tempo class, meter class and ensemble of ``audio`` (its embedding given)."""
        import torch

        from retrieval.captions import tempo_bucket
        from retrieval.encoders.features import FPS, SAMPLE_RATE, compute_features

        wave = _resample(np.asarray(audio, np.float32), sample_rate, SAMPLE_RATE)
        f = compute_features(torch.from_numpy(wave))
        chroma = f["chroma"][0, :12].mean(1).numpy()
        best, minor = -2.0, False
        for r in range(12):
            for prof, is_minor in ((_KK_MAJOR, False), (_KK_MINOR, True)):
                c = float(np.corrcoef(chroma, np.roll(prof, r))[0, 1])
                if c > best:
                    best, minor = c, is_minor
        onset = f["onset"][0].numpy().astype(np.float64)
        onset = onset - onset.mean()
        n = len(onset)
        spec = np.fft.rfft(onset, 2 * n)
        ac = np.fft.irfft(np.abs(spec) ** 2, 2 * n)[:n]
        ac = ac / (ac[0] + 1e-9)
        lags = np.arange(int(0.35 * FPS), min(int(1.1 * FPS), n // 4))
        # A period whose half is as periodic is a bar or a half-time reading, not the heard beat.
        sal = [ac[p] + 0.25 * ac[min(2 * p, n - 1)] - 0.5 * ac[p // 2] for p in lags]
        period = lags[int(np.argmax(sal))] if len(lags) else int(0.6 * FPS)
        bpm = 60.0 * FPS / period
        e = np.asarray(embedding, np.float32)
        return {"mode": "minor" if minor else "major", "tempo_class": tempo_bucket(bpm),
                "meter": list(self.METER_TEXT)[int(np.argmax(self._meter @ e))],
                "ensemble": self.ensembles[int(np.argmax(self._ens @ e))]}


def _resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    from scipy.signal import resample_poly

    g = np.gcd(sr, target)
    return resample_poly(x, target // g, sr // g).astype(np.float32)


def score_attributes(c: Candidate) -> dict[str, str]:
    """What the generated score says: meter class, KK mode of the melody, tempo, ensemble."""
    from generation.generators.symbolic_eval import _score_mode
    from retrieval.captions import meter_class

    cond = c.conditioning
    return {"meter": meter_class(c.score["meter"]) or "", "mode": _score_mode(c.score),
            "tempo_class": str(cond.get("tempo_class", "")), "ensemble": str(cond.get("ensemble", ""))}


def _metadata_attributes(r: Row) -> dict[str, str]:
    from retrieval.captions import meter_class, tempo_bucket

    return {"meter": meter_class(r.get("meter")) or "", "mode": _mode(r) or "",
            "tempo_class": tempo_bucket(r["tempo_bpm"]) if r.get("tempo_bpm") else "",
            "ensemble": str(r.get("ensemble") or "")}


# ---------------------------------------------------------------------- distances

def kad(x: np.ndarray, y: np.ndarray) -> float:
    """Kernel audio distance: unbiased MMD² (x100) with a Gaussian kernel.

    The bandwidth is the median pairwise distance of the pooled sets (NaN when a set has fewer than 2 rows).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    z = np.vstack([x, y])
    d2 = np.maximum(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1), 0.0)
    iu = np.triu_indices(len(z), 1)
    bw = float(np.median(np.sqrt(d2[iu]))) or 1.0
    k = np.exp(-d2 / (2 * bw * bw))
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    mmd = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
           - 2 * kxy.mean())
    return float(100.0 * mmd)


def mean_pairwise_distance(v: np.ndarray) -> float:
    """Mean ``1 - cos`` over pairs (NaN for fewer than two)."""
    v = np.asarray(v, np.float64)
    if len(v) < 2:
        return float("nan")
    s = v @ v.T
    iu = np.triu_indices(len(v), 1)
    return float(np.mean(1.0 - s[iu]))


# ---------------------------------------------------------------------- n-gram baseline

class NgramMelodyModel:
    """Second-order Markov chain over (interval, duration) pairs of corpus melodies.

    The classic symbolic baseline: it knows local melodic habits and nothing of the query,
    of the embedding space, or of form. Pitches are kept in a two-octave window around the
    start, the way folk melodies stay in their range.
    """

    def __init__(self, melodies: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> None:
        self.table: dict[tuple[Any, Any], list[tuple[int, float]]] = {}
        self.starts: list[tuple[tuple[int, float], tuple[int, float]]] = []
        for pitch, dur in melodies:
            if len(pitch) < 4:
                continue
            tok = [(int(pitch[i + 1] - pitch[i]), float(dur[i])) for i in range(len(pitch) - 1)]
            self.starts.append((tok[0], tok[1]))
            for a, b, c in zip(tok, tok[1:], tok[2:], strict=False):
                self.table.setdefault((a, b), []).append(c)
        if not self.starts:
            raise ValueError("the n-gram model needs melodies of at least four notes")

    def sample(self, length_ql: float, seed: int, bar_ql: float = 4.0) -> Events:
        """A melody of at least ``length_ql`` quarter notes, from a corpus opening."""
        rng = np.random.default_rng(seed)
        a, b = self.starts[int(rng.integers(len(self.starts)))]
        pitch, onset, durs, t, p = [72], [0.0], [], 0.0, 72
        for tok in (a, b):
            p = int(np.clip(p + tok[0], 60, 84))
            durs.append(tok[1])
            t += tok[1]
            pitch.append(p)
            onset.append(t)
        while t < length_ql:
            nxt = self.table.get((a, b))
            c = nxt[int(rng.integers(len(nxt)))] if nxt else self.starts[int(rng.integers(len(self.starts)))][0]
            p = int(np.clip(p + c[0], 60, 84))
            durs.append(c[1])
            t += c[1]
            pitch.append(p)
            onset.append(t)
            a, b = b, c
        durs.append(1.0)
        n = len(pitch)
        return Events(onset=np.array(onset), dur=np.maximum(np.array(durs), 0.125),
                      pitch=np.array(pitch, np.int16), voice=np.zeros(n, np.int16),
                      strength=np.zeros(n, np.float32), length_ql=float(t + 1.0), n_voices=1,
                      bar_ql=bar_ql, beat_ql=1.0)


def corpus_melodies(n: int, seed: int = 0) -> list[Events]:
    """Top voices of ``n`` corpus pieces (random, seeded), for the n-gram model and the stats."""
    from generation.symbolic.corpus import list_sources
    from generation.symbolic.render import load_score, score_to_events

    sources = list_sources()
    order = np.random.default_rng(seed).permutation(len(sources))
    out: list[Events] = []
    for i in order:
        if len(out) >= n:
            break
        s = sources[int(i)]
        try:
            ev = score_to_events(load_score(_corpus_path(s.path), s.abc))
        except Exception as e:  # a few corpus files do not parse; the model needs a sample
            log.debug("skip %s: %s", s.piece_id, e)
            continue
        top = ev.voice == 0
        if top.sum() >= 8:
            out.append(ev)
    return out


def _corpus_path(rel: str) -> Any:
    from generation.symbolic.corpus import corpus_root

    return corpus_root() / rel


def _melody_pairs(ev: Events) -> tuple[np.ndarray, np.ndarray]:
    top = np.flatnonzero(ev.voice == 0)
    order = top[np.argsort(ev.onset[top], kind="stable")]
    on = ev.onset[order]
    first = np.append(True, np.diff(on) > 1e-6)
    order = order[first]
    on = ev.onset[order]
    dur = np.append(np.diff(on), ev.dur[order][-1] if len(order) else 1.0)
    return ev.pitch[order].astype(np.int64), np.round(np.maximum(dur, 0.125) * 12) / 12


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


@dataclass
class EvalConfig:
    """Sizes of the run (defaults: the figures in RESULTS.md)."""

    n_candidates: int = 4
    duration_s: float = 20.0
    prior_samples: int = 8
    search_rounds: int = 3
    pool: int | None = None  # candidates per search round (None: the generator's default)
    corpus_pieces: int = 300
    max_queries_per_hole: int | None = None  # None: every query aimed at the hole
    seed: int = 0
    holes: tuple[str, ...] = HOLES
    baselines: bool = True


def run_eval(database_url: str, encoder: Encoder, prior: PriorPipeline, ngram: NgramIndex, *,
             config: EvalConfig | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The whole evaluation (module docstring); returns a JSON-ready report."""
    from generation.backfill.keepers import melody_notes
    from generation.backfill.novelty import different_work_threshold, embedding_gate
    from generation.backfill.pipeline import BackfillConfig, BackfillPipeline, JobRequest, Outcome
    from generation.generators.base import GenerationRequest
    from generation.generators.rerank import embed_candidates
    from generation.generators.symbolic import SymbolicGenerator
    from generation.generators.symbolic_render import Performance, play
    from generation.symbolic import tokens as T

    cfg = config or EvalConfig()
    t0 = time.perf_counter()
    say = progress or (lambda stage, done, total: None)
    cat = load_catalog(database_url, encoder.id, encoder.dim)
    texts = [q.text for q in QUERIES]
    tv = encoder.embed_text(texts)
    text_vecs = {t: tv[i] for i, t in enumerate(texts)}
    samples = {t: np.asarray(prior.sample(tv[i][None], num_samples=cfg.prior_samples,
                                          seed=cfg.seed + i), np.float32)
               for i, t in enumerate(texts)}
    det_rows = detector_rows(cat, text_vecs, samples, cfg.holes)
    detector = detector_auroc(det_rows, encoder.id)

    gen = SymbolicGenerator(encoder=encoder, condition="auto", search_rounds=cfg.search_rounds,
                            pool=cfg.pool)
    uncond = SymbolicGenerator(encoder=encoder, condition="none", search_rounds=1,
                               pool=cfg.n_candidates)
    reader = AudioReader(encoder, [e for e in T.ENSEMBLES if e != "unknown"])
    corpus = corpus_melodies(cfg.corpus_pieces, cfg.seed) if cfg.baselines else []
    ngram_model = NgramMelodyModel([_melody_pairs(e) for e in corpus]) if corpus else None
    corpus_stats = summarise([melody_stats(e) for e in corpus]) if corpus else {}
    rng = np.random.default_rng(cfg.seed)

    hole_queries = [(h, q) for h in cfg.holes
                    for q in [q for q in QUERIES if q.area == h][: cfg.max_queries_per_hole]]
    per_query: list[dict[str, Any]] = []
    methods_by_hole: dict[str, dict[str, list[Method]]] = {}
    for qi, (hole, q) in enumerate(hole_queries):
        say("generate", qi, len(hole_queries))
        gone = cat.mask(hole)
        keep = ~gone
        m_left, m_gone = cat.vectors[keep], cat.vectors[gone]
        works = [r["piece_id"] for r, k in zip(cat.rows, keep, strict=True) if k]
        thr = different_work_threshold(m_left, works)
        qv = text_vecs[q.text]
        left_scores = m_left @ qv
        best_left = float(left_scores.max())
        best_gone = float((m_gone @ qv).max()) if len(m_gone) else float("nan")
        seed = cfg.seed + 1000 * qi
        found: dict[str, Method] = {}

        def judge(name: str, cands: Sequence[Candidate], emb: np.ndarray,
                  m_left: np.ndarray = m_left, thr: float = thr) -> Method:
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

        # The production path: BackfillPipeline.run over the holed catalog (its gate, its
        # oversampling, its re-ranking), exactly what a worker does for a job.
        holed = _HoledCatalog(cat.ids[keep], m_left, thr)
        pipe = BackfillPipeline(encoder, prior, gen, ngram=ngram, catalog=holed,
                                config=BackfillConfig(prior_samples=cfg.prior_samples))
        outcomes = [o for o in pipe.run(q.text, JobRequest(cfg.n_candidates, cfg.duration_s), seed)
                    if isinstance(o, Outcome)]
        found["generated"] = _judge_outcomes(outcomes, reader, ngram)
        if cfg.baselines:
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
                ng_cands = []
                for j in range(cfg.n_candidates):
                    ev = ngram_model.sample(64.0, seed + j)
                    ens = str(rng.choice(["solo fiddle", "accordion", "solo flute", "solo piano"]))
                    perf = Performance(ensemble=ens, bpm=float(rng.uniform(80, 130)), transpose=0,
                                       seed=seed + j)
                    audio, qbpm, arranged, tr = play(ev, "4/4", False, perf, cfg.duration_s, 22050)
                    ng_cands.append(_SimpleCandidate(audio, 22050, _score_of(ev, "4/4", qbpm, tr),
                                                     {"ensemble": ens, "tempo_class": _tempo_class(perf.bpm)}))
                found["n-gram model"] = judge("n-gram model", ng_cands,
                                              encoder.embed_audio([c.audio for c in ng_cands]))
            uc = uncond.generate(GenerationRequest(text=None, duration_s=cfg.duration_s,
                                                   n_candidates=cfg.n_candidates, seed=seed))
            found["unconditional model"] = judge("unconditional model", uc, embed_candidates(uc, encoder))
            rand_attrs = {"meter": str(rng.choice(["2/4", "3/4", "4/4", "6/8"])),
                          "mode": str(rng.choice(["major", "minor"])),
                          "tempo_class": str(rng.choice(["slow", "moderate", "fast"])),
                          "ensemble": str(rng.choice([e for e in T.ENSEMBLES if e != "unknown"]))}
            ra = uncond.generate(GenerationRequest(text=None, attributes=rand_attrs,
                                                   duration_s=cfg.duration_s,
                                                   n_candidates=cfg.n_candidates, seed=seed))
            found["random attributes"] = judge("random attributes", ra, embed_candidates(ra, encoder))
        for name, me in found.items():
            methods_by_hole.setdefault(hole, {}).setdefault(name, []).append(me)
        full_top = np.argsort(-(cat.vectors @ qv))[: cfg.n_candidates]
        per_query.append({
            "hole": hole, "query": q.text, "expect": dict(q.expect),
            "best_remaining": best_left, "best_removed": best_gone, "gate_threshold": thr,
            "real_diversity": mean_pairwise_distance(cat.vectors[full_top]),
            "methods": {name: _query_figures(me, qv, best_left, best_gone, q.expect)
                        for name, me in found.items()}})
    say("generate", len(hole_queries), len(hole_queries))

    heldout = {h: cat.vectors[cat.mask(h) & np.array([r.get("split") in ("validation", "test")
                                                      for r in cat.rows])] for h in cfg.holes}
    summary = _summarise(per_query, methods_by_hole, heldout, corpus_stats)
    return {"catalog_tracks": len(cat.ids), "encoder_id": encoder.id, "config": cfg.__dict__,
            "detector": detector, "detector_rows": [r.__dict__ for r in det_rows],
            "queries": per_query, "summary": summary, "corpus_stats": corpus_stats,
            "seconds": time.perf_counter() - t0}


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


def _judge_outcomes(outcomes: Sequence[Any], reader: AudioReader, ngram: NgramIndex) -> Method:
    """A :class:`Method` from the pipeline's outcomes: its own gate verdicts, kept or not."""
    from generation.backfill.keepers import melody_notes

    me = Method("generated")
    for o in outcomes:
        c = o.candidate
        notes = melody_notes(c.score)
        me.all_embeddings.append(o.embedding)
        me.above_gate.append(not o.kept)
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


def _crossfade(path_a: str | None, path_b: str | None, sr: int, seconds: float) -> np.ndarray | None:
    """A's first half fading (over 2 s) into B's second half, ``seconds`` long, mono at ``sr``."""
    import soundfile as sf

    try:
        a, sa = sf.read(str(path_a), dtype="float32", always_2d=True)
        b, sb = sf.read(str(path_b), dtype="float32", always_2d=True)
    except Exception as e:  # a moved source file: the baseline skips this pair
        log.debug("crossfade skipped: %s", e)
        return None
    a, b = _resample(a.mean(1), sa, sr), _resample(b.mean(1), sb, sr)
    n = int(seconds * sr)
    a, b = np.resize(a, n), np.resize(b, n)
    fade = int(2 * sr)
    mid = n // 2
    w = np.clip((np.arange(n) - (mid - fade // 2)) / fade, 0.0, 1.0).astype(np.float32)
    return (1 - w) * a + w * b


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
            v = np.array([r[key] for r in rows], np.float64)
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
            "above_gate": mean("above_gate"),
            "longest_copied_run": float(max((r["longest_copied_run"] for r in rows), default=0)),
            "diversity": mean("diversity"),
            "real_diversity": float(np.nanmean([q["real_diversity"] for q in per_query])),
            "kad": float(np.nanmean(kads)) if kads else float("nan"),
            **{f"{k}_gap": abs(st[k] - corpus_stats[k]) for k in st if k in corpus_stats},
            **st}
    return out
