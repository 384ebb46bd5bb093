"""Choosing generative settings: ``eval-prior --sweep`` and the rule that picked the defaults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from retrieval.evaluation.metrics import EvalSet
from retrieval.evaluation.prior_report import (
    QUERY_SETS,
    PriorEvalOptions,
    Ranker,
    average_results,
    evaluate,
    generative_ranker,
)


def _optional_float(v: str) -> float | None:
    return None if v.lower() == "none" else float(v)


#: Generative settings a sweep may vary, with how a command-line value is read.
SWEEPABLE: dict[str, Callable[[str], Any]] = {
    "combine": str, "rrf_k": float, "spread_center": float, "spread_slope": float,
    "kde_weight": float, "mmr_lambda": _optional_float, "mmr_lambda_broad": _optional_float,
    "mmr_window": int, "seeds": int, "guidance": float, "per_seed": int, "steps": int,
    "mean_guidance": float, "breadth": str, "specificity_center": float,
    "specificity_slope": float,
}


def parse_sweep(specs: Sequence[str]) -> list[dict[str, Any]]:
    """``["combine=z,rank", "mmr_lambda=0.8,none"]`` -> every combination, as config overrides.

    No specs give no overrides (an empty list).

    Raises:
        ValueError: a malformed spec, an unknown or repeated setting, or an unreadable value.
    """
    import itertools

    axes: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"--sweep takes KEY=V1,V2,...; got {spec!r}")
        if key not in SWEEPABLE:
            raise ValueError(f"cannot sweep {key!r}; one of {', '.join(SWEEPABLE)}")
        if key in axes:
            raise ValueError(f"{key} is swept twice")
        try:
            axes[key] = [SWEEPABLE[key](v.strip()) for v in values.split(",")]
        except ValueError as exc:
            raise ValueError(f"--sweep {key}: {exc}") from None
    if not axes:
        return []
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def select_setting(candidates: dict[str, dict[str, Any]], text: dict[str, Any],
                   regression: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The rule that chose the generative defaults, as code (fixed before looking at test).

    Among settings whose broad-query pages are more diverse than the regression baseline's
    (intra-list diversity) and cover more facets than either baseline, the one with the
    smallest worst-case nDCG@10 gap to the better baseline over the four query sets.

    Args:
        candidates: setting label -> its :func:`evaluate` (or :func:`average_results`) entry.
        text: the text baseline's entry on the same split.
        regression: the regression baseline's entry on the same split.

    Returns:
        ``(winner or None when no setting passes the diversity condition, rows)``; rows are
        sorted best first, one per setting, with each set's gap, the worst gap, broad ILD and
        facet coverage and whether the setting passes.
    """
    rows = []
    for label, res in candidates.items():
        gaps = {q: res[q]["nDCG@10"] - max(text[q]["nDCG@10"], regression[q]["nDCG@10"])
                for q in QUERY_SETS if q in res and "nDCG@10" in res[q]}
        broad = res.get("broad", {})
        diverse = bool(broad) and (
            broad["ILD"] > regression["broad"]["ILD"]
            and broad["facet_coverage"] > max(text["broad"]["facet_coverage"],
                                              regression["broad"]["facet_coverage"]))
        rows.append({"setting": label, **{f"gap {q}": g for q, g in gaps.items()},
                     "worst gap": min(gaps.values()) if gaps else float("nan"),
                     "broad ILD": broad.get("ILD"), "broad facet_coverage":
                     broad.get("facet_coverage"), "passes": diverse})
    rows.sort(key=lambda r: (not r["passes"], -r["worst gap"]))
    winner = rows[0]["setting"] if rows and rows[0]["passes"] else None
    return winner, rows


class MemoPrior:
    """A prior whose :meth:`sample` remembers its results by argument.

    Why: a sweep evaluates many ranking settings on the same queries and sampling seeds, and
    sampling is most of the cost; settings that change only the ranking reuse the draws.
    Everything else is the wrapped pipeline's.
    """

    def __init__(self, prior: Any) -> None:
        self._prior = prior
        self._cache: dict[tuple, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._prior, name)

    def sample(self, positives: np.ndarray | None, negatives: np.ndarray | None = None,
               **kwargs: Any) -> Any:
        """The wrapped :meth:`PriorPipeline.sample`, computed once per distinct argument set."""

        def key(v: np.ndarray | None) -> bytes | None:
            return None if v is None else np.ascontiguousarray(v, np.float32).tobytes()

        k = (key(positives), key(negatives), tuple(sorted(kwargs.items())))
        if k not in self._cache:
            self._cache[k] = self._prior.sample(positives, negatives, **kwargs)
        return self._cache[k]


def sweep_report(es: EvalSet, encoder: Any, prior: Any, baselines: dict[str, Ranker],
                 captions: list[str], options: PriorEvalOptions,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every setting of ``options.sweep`` against the baselines on one split, and the one selected.

    The selection is :func:`select_setting`'s.

    Sampling is memoised across settings (:class:`MemoPrior`) and so are the query
    embeddings: every setting sees the same query sets and the same draws.

    Returns:
        ``split``, ``tracks``, ``repeats``, ``selected`` (None when no setting passes),
        ``scheduler``, ``default_steps``, ``rows`` (:func:`select_setting`) and ``baselines``
        (the text and regression figures per query set).
    """
    memo, seen = MemoPrior(prior), {}

    def embed_text(texts: list[str]) -> np.ndarray:  # the same query sets for every setting
        key = tuple(texts)
        if key not in seen:
            seen[key] = encoder.embed_text(texts)
        return seen[key]

    base = evaluate(es, embed_text, baselines, captions)
    found: dict[str, Any] = {}
    for label, cfg in options.sweep.items():
        gens = {f"g{r}": generative_ranker(memo, es, replace(cfg, seed=options.sample_seed
                                                             + 1000 * r))
                for r in range(options.repeats)}
        found[label] = average_results(list(evaluate(es, embed_text, gens, captions).values()))
        if progress is not None:
            progress(label)
    winner, rows = select_setting(found, base["text"], base["regression"])
    return {"split": options.split, "tracks": len(es.rows), "repeats": options.repeats,
            "selected": winner, "scheduler": prior.scheduler_name,
            "default_steps": prior.num_inference_steps, "rows": rows,
            "baselines": {k: {q: v[q] for q in QUERY_SETS} for k, v in base.items()}}
