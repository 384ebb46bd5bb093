"""Encoder v2's additions to ``eval-encoder``: metre in detail, real descriptions, render drops.

- **compound vs simple duple**: among duple and compound-metre renders only, does the audio
  sit nearer the compound prompts or the duple ones? (The hidden evaluation's "a jig" scored
  0.0: 6/8 is the metre our encoder lost when another tool rendered it.)
- **real descriptions** (:mod:`retrieval.evaluation.real_descriptions`): 150 hand-written
  requests and blurbs, relevant = the track satisfies all their facts; nDCG@10 and P@10 beside
  the random ranking's expectation.
- **drop**: the same test pieces rendered as training renders them (in distribution) and as
  the held-out variant does; the relative drop of each headline figure.

Everything takes embeddings and metadata rows, never a renderer: ``api.encoder_jobs`` renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from retrieval.evaluation.metrics import balanced_accuracy, random_baseline, retrieval_metrics
from retrieval.evaluation.queries import ATTRIBUTE_PROMPTS
from retrieval.evaluation.real_descriptions import REAL_DESCRIPTIONS, relevant

EmbedText = Callable[[list[str]], np.ndarray]

#: The figures the issue's "Done when" names, read from a report (path, then a label).
HEADLINE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("zero_shot", "meter_class", "balanced_accuracy"), "meter balanced acc."),
    (("v2", "compound_vs_simple", "balanced_accuracy"), "compound vs simple duple"),
    (("zero_shot", "tempo_bucket", "accuracy"), "tempo bucket acc."),
    (("zero_shot", "tempo_bucket", "balanced_accuracy"), "tempo bucket balanced"),
    (("zero_shot", "mode_family", "balanced_accuracy"), "mode balanced acc."),
    (("single_attribute", "mean_P@10"), "single-attribute P@10"),
    (("retrieval", "paraphrase -> audio", "R@10"), "paraphrase -> audio R@10"),
    # the oracle's R@10 on the same paraphrases: the held-out variant plays everything on one
    # piano, so "a keyboard instrument" fits every render and the ceiling itself falls
    (("retrieval", "paraphrase -> audio", "oracle", "R@10"), "paraphrase R@10 ceiling"),
    (("retrieval", "paraphrase -> matching renders", "P@10"), "paraphrase -> matching P@10"),
    (("v2", "real_descriptions", "mean_nDCG@10"), "real descriptions nDCG@10"),
    (("zero_shot", "tune_type", "balanced_accuracy"), "tune type balanced acc."),
    (("v2", "mood_cells", "balanced_accuracy"), "mood cells balanced acc."),
)


def _class_vector(embed_text: EmbedText, prompts: Sequence[str]) -> np.ndarray:
    v = embed_text(list(prompts)).mean(0)
    return v / (np.linalg.norm(v) + 1e-9)


def compound_vs_simple(audio: np.ndarray, rows: Sequence[dict[str, Any]], embed_text: EmbedText) -> dict[str, float]:
    """Two-way zero-shot on duple vs compound renders (triple ones left out)."""
    keep = [i for i, r in enumerate(rows) if r.get("meter_class") in ("duple", "compound")]
    if not keep:
        return {"balanced_accuracy": float("nan"), "accuracy": float("nan"), "n": 0}
    prompts = ATTRIBUTE_PROMPTS["meter_class"]
    classes = ["duple", "compound"]
    vecs = np.stack([_class_vector(embed_text, prompts[c]) for c in classes])
    pred = (audio[keep] @ vecs.T).argmax(1)
    truth = np.array([classes.index(rows[i]["meter_class"]) for i in keep])
    return {"balanced_accuracy": balanced_accuracy(truth, pred), "accuracy": float(np.mean(pred == truth)),
            "n": len(keep), "n_compound": int(truth.sum())}


def real_description_eval(audio: np.ndarray, rows: Sequence[dict[str, Any]], embed_text: EmbedText) -> dict[str, Any]:
    """nDCG@10 and P@10 of each real description that has a relevant render here."""
    descs = [d for d in REAL_DESCRIPTIONS if any(relevant(d, r) for r in rows)]
    if not descs:
        return {"n_queries": 0, "mean_nDCG@10": float("nan"), "mean_P@10": float("nan")}
    rel = np.array([[relevant(d, r) for r in rows] for d in descs])
    sims = embed_text([d.text for d in descs]) @ audio.T
    per = []
    for i in range(len(descs)):
        m = retrieval_metrics(sims[i:i + 1], rel[i:i + 1])
        b = random_baseline(rel[i:i + 1])
        per.append({"text": descs[i].text, "nDCG@10": m["nDCG@10"], "P@10": m["P@10"],
                    "random_nDCG@10": b["nDCG@10"], "random_P@10": b["P@10"], "n_relevant": int(rel[i].sum())})
    return {"n_queries": len(descs), "of": len(REAL_DESCRIPTIONS),
            "mean_nDCG@10": float(np.mean([p["nDCG@10"] for p in per])),
            "mean_P@10": float(np.mean([p["P@10"] for p in per])),
            "mean_random_nDCG@10": float(np.mean([p["random_nDCG@10"] for p in per])),
            "mean_random_P@10": float(np.mean([p["random_P@10"] for p in per])),
            "per_query": per}


def mood_cells(audio: np.ndarray, rows: Sequence[dict[str, Any]], embed_text: EmbedText) -> dict[str, Any]:
    """The mood hypothesis's test on the encoder (:data:`retrieval.caption_variety.MOOD_HYPOTHESIS`).

    Six-way zero-shot: each render goes to the (tempo bucket, mode family) cell whose mood words
    (``"a {word} piece"``) its audio is nearest; chance is 1/6 balanced. A cell the encoder
    cannot find says its words are not (yet) grounded in what is heard.
    """
    from retrieval.caption_variety import MOOD_TABLE

    cells = list(MOOD_TABLE)
    keep = [i for i, r in enumerate(rows) if (r.get("tempo_bucket"), r.get("mode_family")) in MOOD_TABLE]
    if not keep:
        return {"balanced_accuracy": float("nan"), "n": 0}
    vecs = np.stack([_class_vector(embed_text, [f"a {w} piece" for w in MOOD_TABLE[c]]) for c in cells])
    pred = (audio[keep] @ vecs.T).argmax(1)
    truth = np.array([cells.index((rows[i]["tempo_bucket"], rows[i]["mode_family"])) for i in keep])
    per_cell = {f"{c[0]}+{c[1]}": float(np.mean(pred[truth == k] == k)) if (truth == k).any() else float("nan")
                for k, c in enumerate(cells)}
    return {"balanced_accuracy": balanced_accuracy(truth, pred), "chance": 1 / len(cells), "n": len(keep),
            "recall_per_cell": per_cell}


def v2_sections(audio: np.ndarray, rows: Sequence[dict[str, Any]], embed_text: EmbedText) -> dict[str, Any]:
    """The ``v2`` block of a report: compound vs simple, real descriptions, the mood cells."""
    return {"compound_vs_simple": compound_vs_simple(audio, rows, embed_text),
            "real_descriptions": real_description_eval(audio, rows, embed_text),
            "mood_cells": mood_cells(audio, rows, embed_text)}


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The :data:`HEADLINE` figures of one report (NaN where a section is missing)."""
    out = {}
    for path, label in HEADLINE:
        node: Any = report
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        out[label] = float(node) if isinstance(node, int | float) else float("nan")
    return out


def drop(in_distribution: dict[str, float], heldout: dict[str, float]) -> dict[str, float]:
    """Relative drop per figure, ``1 - heldout / in_distribution`` (negative: held-out is better)."""
    return {k: (1.0 - heldout[k] / v) if v and not np.isnan(v) and not np.isnan(heldout.get(k, np.nan))
            else float("nan") for k, v in in_distribution.items()}
