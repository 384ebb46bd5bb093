"""eval-encoder's v2 sections: compound vs simple metre, real descriptions, headline figures, drops."""

from __future__ import annotations

import numpy as np

from retrieval.evaluation.encoder_v2_report import (
    HEADLINE,
    compound_vs_simple,
    drop,
    headline,
    real_description_eval,
    v2_sections,
)
from retrieval.evaluation.real_descriptions import REAL_DESCRIPTIONS, relevant


def _embedder(words: dict[str, int], dim: int = 8):
    """A text embedder that puts each keyword on its own axis (what the tests need to steer)."""
    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), np.float32)
        for i, t in enumerate(texts):
            for w, axis in words.items():
                if w in t.lower():
                    out[i, axis] += 1.0
            out[i, dim - 1] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)
    return embed


def test_compound_vs_simple_counts_only_duple_and_compound() -> None:
    rows = [{"meter_class": m} for m in ["duple", "compound", "triple", "compound", "duple"]]
    embed = _embedder({"compound": 0, "duple": 1})
    perfect = np.array([[0, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0],
                        [1, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]], np.float32)
    m = compound_vs_simple(perfect, rows, embed)
    assert (m["balanced_accuracy"], m["n"], m["n_compound"]) == (1.0, 4, 2)
    flipped = perfect[:, [1, 0, 2, 3, 4, 5, 6, 7]]
    assert compound_vs_simple(flipped, rows, embed)["balanced_accuracy"] == 0.0
    assert compound_vs_simple(perfect, [{"meter_class": "triple"}] * 5, embed)["n"] == 0


def test_real_descriptions_score_relevant_rows_above_random() -> None:
    desc = next(d for d in REAL_DESCRIPTIONS if set(d.constraints) == {"tune_type"})
    wanted = desc.constraints["tune_type"][0]
    rows = [{"tune_type": wanted if i % 5 == 0 else "other"} for i in range(50)]
    assert sum(relevant(desc, r) for r in rows) == 10
    # audio embeddings that put the relevant rows exactly where the description's text lands
    rng = np.random.default_rng(0)

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([np.eye(16)[0] if t == desc.text else np.eye(16)[1] for t in texts]).astype(np.float32)

    audio = np.stack([np.eye(16)[0] if r["tune_type"] == wanted else rng.normal(size=16) * 0.01 + np.eye(16)[2]
                      for r in rows]).astype(np.float32)
    rep = real_description_eval(audio, rows, embed)
    per = {p["text"]: p for p in rep["per_query"]}
    assert per[desc.text]["nDCG@10"] == 1.0 and per[desc.text]["P@10"] == 1.0
    assert per[desc.text]["random_P@10"] < 0.3
    assert rep["n_queries"] < rep["of"]  # descriptions with nothing relevant here are left out


def test_headline_and_drop() -> None:
    rows = [{"meter_class": "duple", "piece_id": "a"}, {"meter_class": "compound", "piece_id": "b"}]
    embed = _embedder({"compound": 0, "duple": 1})
    audio = np.eye(8, dtype=np.float32)[[1, 0]]
    rep = {"zero_shot": {"meter_class": {"balanced_accuracy": 0.8}}, "v2": v2_sections(audio, rows, embed)}
    h = headline(rep)
    assert set(h) == {label for _, label in HEADLINE}
    assert h["meter balanced acc."] == 0.8 and h["compound vs simple duple"] == 1.0
    assert np.isnan(h["single-attribute P@10"])  # missing sections read as NaN, never as 0
    d = drop({"a": 0.8, "b": 0.5, "c": float("nan")}, {"a": 0.72, "b": 0.6, "c": 0.3})
    assert abs(d["a"] - 0.1) < 1e-9 and abs(d["b"] + 0.2) < 1e-9 and np.isnan(d["c"])


def test_mood_cells_follow_the_hypothesis_table() -> None:
    from retrieval.caption_variety import MOOD_TABLE
    from retrieval.evaluation.encoder_v2_report import mood_cells

    cells = list(MOOD_TABLE)
    axis = {w: k for k, c in enumerate(cells) for w in MOOD_TABLE[c]}

    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 8), np.float32)
        for i, t in enumerate(texts):
            out[i, axis[t.split()[1]]] = 1.0
        return out

    rows = [{"tempo_bucket": c[0], "mode_family": c[1]} for c in cells for _ in range(3)]
    audio = np.eye(8, dtype=np.float32)[[k for k in range(6) for _ in range(3)]]
    m = mood_cells(audio, rows, embed)
    assert m["balanced_accuracy"] == 1.0 and m["n"] == 18 and abs(m["chance"] - 1 / 6) < 1e-9
    shifted = np.eye(8, dtype=np.float32)[[(k + 1) % 6 for k in range(6) for _ in range(3)]]
    assert mood_cells(shifted, rows, embed)["balanced_accuracy"] == 0.0
