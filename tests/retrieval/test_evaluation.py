"""Evaluation metrics: exact values on hand-made rankings; the random baseline's expectation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from retrieval.evaluation.encoder_report import zero_shot
from retrieval.evaluation.metrics import (
    attribute_relevance,
    balanced_accuracy,
    random_baseline,
    retrieval_metrics,
)


def test_retrieval_metrics_on_a_known_ranking() -> None:
    sims = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    rel = np.array([[False, True, False, False], [True, False, False, False]])
    m = retrieval_metrics(sims, rel, ks=(1, 2, 4))
    assert m["R@1"] == 0.0  # neither query has its relevant item first
    assert m["R@2"] == 0.5  # query 0 finds it at rank 2
    assert m["R@4"] == 1.0
    # nDCG@10: query 0 at rank 2 -> 1/log2(3); query 1 at rank 4 -> 1/log2(5)
    assert m["nDCG@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / 2)


def test_random_baseline_matches_simulation() -> None:
    rng = np.random.default_rng(0)
    rel = rng.random((5, 60)) < 0.1
    rel[:, 0] = True
    expected = random_baseline(rel)
    sims = [retrieval_metrics(rng.random(rel.shape), rel) for _ in range(400)]
    for key in ("R@1", "R@5", "R@10", "P@10", "nDCG@10"):
        simulated = float(np.mean([s[key] for s in sims]))
        assert simulated == pytest.approx(expected[key], abs=0.03), key


def test_balanced_accuracy_punishes_majority_guessing() -> None:
    y = np.array([0] * 90 + [1] * 10)
    assert balanced_accuracy(y, np.zeros(100, int)) == 0.5
    assert balanced_accuracy(y, y) == 1.0


def test_zero_shot_picks_the_nearest_prompt() -> None:
    prompts = {"a slow piece": [1.0, 0.0], "slow tempo": [1.0, 0.0], "a moderate tempo piece": [0.7, 0.7],
               "medium tempo": [0.7, 0.7], "a fast piece": [0.0, 1.0], "fast tempo": [0.0, 1.0]}

    def embed(texts: list[str]) -> np.ndarray:
        v = np.array([prompts[t] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    audio = np.array([[1, 0], [0, 1], [0.1, 1]], dtype=np.float32)
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    rows = [{"tempo_bucket": "slow"}, {"tempo_bucket": "fast"}, {"tempo_bucket": "slow"}]
    r = zero_shot(audio, rows, embed, "tempo_bucket")
    assert r["accuracy"] == pytest.approx(2 / 3) and r["n"] == 3
    assert r["balanced_accuracy"] == pytest.approx(0.75)


def test_attribute_relevance_matches_lists() -> None:
    rows = [{"instruments": ["fiddle", "flute"]}, {"instruments": ["piano"]}, {"ensemble": "choir"}]
    assert attribute_relevance(rows, "instruments", ("flute",)).tolist() == [True, False, False]
    assert attribute_relevance(rows, "ensemble", ("choir",)).tolist() == [False, False, True]


def test_eval_prior_reads_the_regression_data_from_the_prior_card(tmp_path: Path) -> None:
    from retrieval.evaluation.prior_report import CardSettings

    prior = SimpleNamespace(card={"data": {"audio_crop_s": 5.0, "captions_per_track": 8,
                                           "extra_captions": 2, "catalogs": [str(tmp_path)]}})
    card = CardSettings.of(prior)
    assert (card.crop_s, card.captions_per_track, card.extra_captions) == (5.0, 8, 2)
    assert CardSettings.of(prior, 0.0).crop_s == 0.0  # --crop-s overrides the card
    assert card.regression_catalogs([], None) == [tmp_path]
    assert card.regression_catalogs([Path("given")], None) == [Path("given")]
    gone = CardSettings.of(SimpleNamespace(card={"data": {"catalogs": [str(tmp_path / "x")]}}))
    assert gone.regression_catalogs([], tmp_path / "eval") == [tmp_path / "eval"]
    assert CardSettings.of(SimpleNamespace(card={})) == CardSettings(0.0, 4, 0, ())
