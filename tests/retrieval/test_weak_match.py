"""The weak-match detector: fallback rule, fitting, persistence, AUROC."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.search.weak_match import WeakMatchDetector, auroc, detector_path, fit_detector, load_detector, signals_of


def test_fallback_is_the_historic_threshold() -> None:
    det = WeakMatchDetector.fallback("enc@1")
    assert det.assess([0.29, 0.2]).weak and not det.assess([0.31, 0.2]).weak
    v = det.assess([0.1])
    assert not det.calibrated and "not calibrated" in v.reason and 0.5 < v.score <= 1.0


def test_signals_and_empty_result() -> None:
    s = signals_of([0.2, 0.5, 0.4], prior_nn=[0.8, 0.6])
    assert s["top1"] == pytest.approx(0.5) and s["top10"] == pytest.approx(1.1 / 3)
    assert s["gap"] == pytest.approx(0.5 - 1.1 / 3) and s["prior_nn"] == pytest.approx(0.7)
    v = WeakMatchDetector.fallback().assess([])
    assert v.weak and v.reason == "no track passed the filters"


def test_fit_separates_and_roundtrips(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for weak in [True] * 40 + [False] * 40:
        top = rng.normal(0.25 if weak else 0.40, 0.05, 10)
        nn = rng.normal(0.55 if weak else 0.85, 0.05, 4)
        rows.append(signals_of(top, nn))
        labels.append(weak)
    det = fit_detector(rows, labels, encoder_id="enc@1")
    probs = [det.probability(r) for r in rows]
    assert auroc(probs, labels) > 0.95
    # Without the prior's signal the second model still separates on the scores alone.
    no_prior = [{k: v for k, v in r.items() if k != "prior_nn"} for r in rows]
    assert auroc([det.probability(r) for r in no_prior], labels) > 0.8
    path = det.save(detector_path("enc@1", tmp_path))
    again = load_detector("enc@1", tmp_path)
    assert again.calibrated and again.probability(rows[0]) == pytest.approx(probs[0])
    assert "catalog seems to lack" in again.assess([0.1] * 10, [0.3]).reason
    # A file is never used for another encoder.
    assert not load_detector("enc@2", tmp_path).calibrated and path.is_file()


def test_auroc_ties_and_degenerate() -> None:
    assert auroc([1, 0], [True, False]) == 1.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert np.isnan(auroc([0.1], [True]))
