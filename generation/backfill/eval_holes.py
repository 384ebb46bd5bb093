"""The holes of ``eval-backfill``, the queries aimed at them, and the weak-match detector's part.

Split from :mod:`generation.backfill.evaluation` (see its docstring for the method): what a
hole removes, which queries count as hole or covered queries in each holed catalog, and the
leave-one-hole-out AUROC of the detector's rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    from retrieval.search.named import named_support
    from retrieval.search.weak_match import signals_of

    out = []
    for hole in holes:
        keep = ~cat.mask(hole)
        m = cat.vectors[keep]
        count = _table_counter([r for r, k in zip(cat.rows, keep, strict=True) if k])
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
            named = named_support(q.text, count, int(keep.sum()))
            out.append(DetectorRow(hole, q.text, weak, signals_of(top, nn, named)))
    return out


def _table_counter(rows: Sequence[Row]) -> Callable[[dict[str, list[str]]], int]:
    """``named filters -> matching tracks`` over ``rows``.

    Counted by the search service's own column store
    (:class:`~retrieval.search.table.TrackTable`), so the semantics are the live detector's.
    """
    from retrieval.search.filters import Filters
    from retrieval.search.table import TrackMeta, TrackTable

    def meta(r: Row) -> Any:
        return TrackMeta.from_values(int(r["id"]), [r.get(c) for c in TrackMeta.COLUMNS])

    table = TrackTable(meta(r) for r in rows)

    def count(named: dict[str, list[str]]) -> int:
        ids = table.match(Filters.from_values(named))
        return len(table) if ids is None else len(ids)

    return count


def _without_named(signals: Mapping[str, float]) -> dict[str, float]:
    """The signals without the query parser's (``named``, ``named_none``): embeddings only."""
    return {k: v for k, v in signals.items() if k not in ("named", "named_none")}


def detector_auroc(rows: Sequence[DetectorRow], encoder_id: str) -> dict[str, float]:
    """Leave-one-hole-out AUROC of the fitted rule, with and without the prior's signal.

    Next to it, the uncalibrated ``top1 < 0.3`` rule's. With a single hole there is nothing to
    fit on but the hole itself, so the fitted figures are NaN rather than in-sample.
    """
    from retrieval.search.weak_match import WeakMatchDetector, auroc, fit_detector

    labels = [r.weak for r in rows]
    loo_full, loo_scores, loo_embed = [0.0] * len(rows), [0.0] * len(rows), [0.0] * len(rows)
    fallback = WeakMatchDetector.fallback(encoder_id)
    for hole in sorted({r.hole for r in rows}):
        train = [r for r in rows if r.hole != hole]
        if len({r.weak for r in train}) < 2:  # one hole only: nothing to fit on but itself
            loo_full = loo_scores = loo_embed = [float("nan")] * len(rows)
            break
        det = fit_detector([r.signals for r in train], [r.weak for r in train], encoder_id=encoder_id)
        for i, r in enumerate(rows):
            if r.hole == hole:
                loo_full[i] = det.probability(r.signals)
                loo_scores[i] = det.probability({k: v for k, v in r.signals.items() if k != "prior_nn"})
        det2 = fit_detector([_without_named(r.signals) for r in train],
                            [r.weak for r in train], encoder_id=encoder_id)
        for i, r in enumerate(rows):
            if r.hole == hole:
                loo_embed[i] = det2.probability(_without_named(r.signals))
    fb = [fallback.probability(r.signals) for r in rows]
    return {"auroc": auroc(loo_full, labels), "auroc_scores_only": auroc(loo_scores, labels),
            "auroc_top1_rule": auroc(fb, labels), "auroc_without_named": auroc(loo_embed, labels),
            "accuracy": float(np.mean([(p >= 0.5) == y for p, y in zip(loo_full, labels, strict=True)]))
            if np.isfinite(loo_full).all() else float("nan"),
            "hole_queries": int(sum(labels)), "covered_queries": int(len(labels) - sum(labels))}
