"""Evaluation of a text-audio encoder on held-out renders: retrieval and zero-shot attributes.

All metrics take embeddings (numpy, unit rows) plus labels, so the same code scores the default
encoder, a CLAP backend, or a random baseline. A random-ranking baseline is computed in the same
run for every retrieval metric (its expectation, not one draw).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Zero-shot prompts per attribute class; the class score is the mean over its prompts.
ATTRIBUTE_PROMPTS: dict[str, dict[str, list[str]]] = {
    "instrument_family": {
        "strings": ["bowed strings: violin, fiddle, viola or cello", "a string instrument played with a bow"],
        "keyboard": ["a piano or harpsichord", "keyboard music"],
        "organ": ["a church organ", "pipe organ music"],
        "woodwind": ["a flute, whistle, recorder, clarinet or oboe", "woodwind instruments"],
        "brass": ["trumpets, horns and trombones", "brass instruments"],
        "voice": ["singing voices", "a choir or a solo voice"],
        "free reed": ["an accordion or harmonica", "free reed instrument"],
        "plucked": ["a guitar, harp or banjo", "plucked strings"],
        "bagpipes": ["bagpipes with a drone", "highland pipes"],
    },
    "tempo_bucket": {
        "slow": ["a slow piece", "slow tempo"],
        "moderate": ["a moderate tempo piece", "medium tempo"],
        "fast": ["a fast piece", "fast tempo"],
    },
    "mode_family": {
        "major": ["music in a major key", "a major-key melody"],
        "minor": ["music in a minor key", "a minor-key melody"],
    },
    "meter_class": {
        "duple": ["music in duple time", "in two, a duple meter"],
        "triple": ["music in triple time", "a waltz-like triple meter"],
        "compound": ["music in compound time, six-eight", "a lilting compound meter"],
    },
    "tune_type": {
        "jig": ["a jig"], "reel": ["a reel"], "hornpipe": ["a hornpipe"], "slip jig": ["a slip jig"],
        "air": ["a slow air"], "strathspey": ["a strathspey"], "folk song": ["a folk song"],
        "chorale": ["a chorale"], "quartet movement": ["a string quartet movement"],
        "mass movement": ["a mass movement"], "march": ["a march"],
    },
}

#: Single-attribute queries: (query text, metadata field, accepted values).
SINGLE_ATTRIBUTE_QUERIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("a jig", "tune_type", ("jig",)),
    ("a reel", "tune_type", ("reel",)),
    ("a hornpipe", "tune_type", ("hornpipe",)),
    ("a chorale", "tune_type", ("chorale",)),
    ("a slow piece", "tempo_bucket", ("slow",)),
    ("a fast piece", "tempo_bucket", ("fast",)),
    ("a string quartet", "ensemble", ("string quartet",)),
    ("solo piano", "ensemble", ("solo piano",)),
    ("a choir", "ensemble", ("choir",)),
    ("church organ", "ensemble", ("church organ",)),
    ("in a minor key", "mode_family", ("minor",)),
    ("in a major key", "mode_family", ("major",)),
    ("bagpipes", "ensemble", ("bagpipes",)),
    ("fiddle", "instruments", ("fiddle", "violin")),
    ("flute", "instruments", ("flute",)),
    ("accordion", "instruments", ("accordion",)),
    ("brass", "instrument_family", ("brass",)),
    ("music in triple time", "meter_class", ("triple",)),
    ("music in six-eight time", "meter_class", ("compound",)),
]


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes])) if len(classes) else 0.0


def zero_shot(audio: np.ndarray, rows: Sequence[dict[str, Any]], embed_text: Callable[[list[str]], np.ndarray],
              attribute: str) -> dict[str, float]:
    """Accuracy and balanced accuracy of picking the best-matching class prompt."""
    prompts = ATTRIBUTE_PROMPTS[attribute]
    classes = list(prompts)
    keep = [i for i, r in enumerate(rows) if r.get(attribute) in classes]
    if not keep:
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "n": 0}
    class_vecs = []
    for c in classes:
        v = embed_text(prompts[c]).mean(0)
        class_vecs.append(v / (np.linalg.norm(v) + 1e-9))
    sims = audio[keep] @ np.stack(class_vecs).T
    pred = sims.argmax(1)
    truth = np.array([classes.index(rows[i][attribute]) for i in keep])
    return {"accuracy": float(np.mean(pred == truth)), "balanced_accuracy": balanced_accuracy(truth, pred),
            "n": len(keep), "majority": float(np.bincount(truth).max() / len(truth))}


def retrieval_metrics(sims: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k (any relevant item in the top k) and nDCG@10 for a query x item similarity matrix.

    Args:
        sims: float ``[Q, N]``.
        relevant: bool ``[Q, N]``.
    """
    order = np.argsort(-sims, axis=1)
    rel_sorted = np.take_along_axis(relevant, order, axis=1)
    out: dict[str, float] = {}
    for k in ks:
        out[f"R@{k}"] = float(np.mean(rel_sorted[:, :k].any(1)))
    out["nDCG@10"] = float(np.mean(_ndcg(rel_sorted, relevant.sum(1), 10)))
    out["P@10"] = float(np.mean(rel_sorted[:, :10].mean(1)))
    return out


def random_baseline(relevant: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Expected metrics of a uniformly random ranking (exact, via the hypergeometric law)."""
    n = relevant.shape[1]
    r = relevant.sum(1).astype(float)
    out: dict[str, float] = {}
    for k in ks:
        # P(no relevant among k drawn without replacement)
        p_none = np.ones_like(r)
        for j in range(k):
            p_none *= np.clip((n - r - j) / (n - j), 0, 1)
        out[f"R@{k}"] = float(np.mean(1 - p_none))
    disc = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.array([disc[: int(min(ri, 10))].sum() for ri in r])
    out["nDCG@10"] = float(np.mean((r / n) * disc.sum() / np.maximum(ideal, 1e-9)))
    out["P@10"] = float(np.mean(r / n))
    return out


def _ndcg(rel_sorted: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    top = rel_sorted[:, :k]
    dcg = (top * disc[: top.shape[1]]).sum(1)  # catalogs smaller than k
    ideal = np.array([disc[: int(min(r, k))].sum() for r in n_rel])
    return dcg / np.maximum(ideal, 1e-9)


def attribute_relevance(rows: Sequence[dict[str, Any]], field: str, values: tuple[str, ...]) -> np.ndarray:
    """Which rows match a single-attribute query (lists match on any element)."""
    out = []
    for r in rows:
        v = r.get(field)
        out.append(any(x in values for x in v) if isinstance(v, list) else v in values)
    return np.array(out, dtype=bool)


def single_attribute_eval(audio: np.ndarray, rows: Sequence[dict[str, Any]],
                          embed_text: Callable[[list[str]], np.ndarray]) -> dict[str, dict[str, float]]:
    """P@10, nDCG@10 per single-attribute query, with the random baseline beside it."""
    out = {}
    for query, field, values in SINGLE_ATTRIBUTE_QUERIES:
        rel = attribute_relevance(rows, field, values)[None, :]
        if not rel.any():
            continue
        sims = embed_text([query]) @ audio.T
        m = retrieval_metrics(sims, rel)
        base = random_baseline(rel)
        out[query] = {"P@10": m["P@10"], "nDCG@10": m["nDCG@10"], "random_P@10": base["P@10"],
                      "n_relevant": int(rel.sum())}
    return out
