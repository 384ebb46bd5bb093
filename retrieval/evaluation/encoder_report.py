"""``eval-encoder``'s report: text -> audio and audio -> audio retrieval, attribute queries and accuracy.

Single-attribute queries and zero-shot attribute accuracy are included; each figure stands beside
a random-ranking baseline (its expectation, not one draw).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from retrieval.evaluation.metrics import (
    attribute_relevance,
    balanced_accuracy,
    random_baseline,
    retrieval_metrics,
)
from retrieval.evaluation.queries import ATTRIBUTE_PROMPTS, SINGLE_ATTRIBUTE_QUERIES


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


def paraphrase_relevance(texts: Sequence[str], rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """``[queries, renders]``: the render satisfies every fact the paraphrase states."""
    from retrieval.captions import paraphrase_facts

    columns: dict[str, np.ndarray] = {}
    rel = np.ones((len(texts), len(rows)), dtype=bool)
    for q, text in enumerate(texts):
        for field, value in paraphrase_facts(text).items():
            if field not in columns:
                columns[field] = np.array([r.get(field) for r in rows], dtype=object)
            rel[q] &= columns[field] == value
    return rel


def oracle_recall(stated: np.ndarray, owner: Sequence[int], k: int = 10) -> dict[str, float]:
    """Expected R@k of an oracle that ranks the renders fitting every stated fact first.

    Ties among them are in random order: the ceiling of exact-render recall for queries that
    describe a group rather than one clip.

    A paraphrase names at most tempo, mode and instrument family, so its own render shares
    all of them with a dozen others; R@10 cannot reach 1 and the figure says how far it can.
    """
    own = stated[np.arange(len(owner)), list(owner)]
    cell = np.where(own, stated.sum(1), stated.sum(1) + 1)
    return {f"R@{k}": float(np.mean(np.minimum(1.0, k / np.maximum(cell, 1))))}


def encoder_report(encoder_id: str, soundfonts: Sequence[str], audio: np.ndarray,
                   rows: Sequence[dict[str, Any]], embed_text: Callable[[list[str]], np.ndarray]
                   ) -> dict[str, Any]:
    """``eval-encoder``'s report over held-out renders.

    Args:
        encoder_id: the encoder evaluated, named in the report.
        soundfonts: the held-out soundfonts the renders use, named in the report.
        audio: unit audio embeddings ``[N, dim]`` of the renders.
        rows: their metadata rows (``piece_id``, ``captions``, ``paraphrases``, attributes).
        embed_text: the encoder's text embedding.

    Relevance: a caption or paraphrase query's own render; for audio -> audio, another render
    (other ensemble, tempo, excerpt) of the same piece.
    """
    pieces = np.array([r["piece_id"] for r in rows])
    n = len(rows)
    report: dict[str, Any] = {"encoder": encoder_id, "soundfont": ", ".join(soundfonts),
                              "n_renders": n, "n_pieces": len(set(pieces.tolist())),
                              "retrieval": {}}
    # held-out captions (training style, unseen pieces) and paraphrases (unseen templates):
    # relevant = the render the caption describes
    for name, key in (("caption -> audio", "captions"), ("paraphrase -> audio", "paraphrases")):
        texts, owner = [], []
        for i, r in enumerate(rows):
            for c in r.get(key, [])[:2]:
                texts.append(c)
                owner.append(i)
        rel = np.zeros((len(texts), n), dtype=bool)
        rel[np.arange(len(texts)), owner] = True
        sims = embed_text(texts) @ audio.T
        report["retrieval"][name] = {**retrieval_metrics(sims, rel), "random": random_baseline(rel)}
        if key == "paraphrases":
            stated = paraphrase_relevance(texts, rows)
            report["retrieval"][name]["oracle"] = oracle_recall(stated, owner)
            report["retrieval"]["paraphrase -> matching renders"] = {
                **retrieval_metrics(sims, stated), "random": random_baseline(stated)}
    # audio -> audio: another render (other ensemble, tempo, excerpt) of the same piece
    sims = audio @ audio.T
    np.fill_diagonal(sims, -np.inf)
    rel = (pieces[:, None] == pieces[None, :]) & ~np.eye(n, dtype=bool)
    keep = rel.any(1)
    report["retrieval"]["audio -> same piece"] = {**retrieval_metrics(sims[keep], rel[keep]),
                                                   "random": random_baseline(rel[keep][:, :])}
    sa = single_attribute_eval(audio, rows, embed_text)
    report["single_attribute"] = {
        "queries": sa,
        "mean_P@10": float(np.mean([m["P@10"] for m in sa.values()])),
        "mean_nDCG@10": float(np.mean([m["nDCG@10"] for m in sa.values()])),
        "mean_random_P@10": float(np.mean([m["random_P@10"] for m in sa.values()])),
    }
    report["zero_shot"] = {a: zero_shot(audio, rows, embed_text, a) for a in
                           ("instrument_family", "tempo_bucket", "mode_family", "meter_class",
                            "tune_type")}
    return report
