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


def test_absence_of_what_the_query_names_outweighs_a_high_cosine() -> None:
    """``named_none`` lets the fit make "no track has it" decisive, which ``named`` cannot.

    Holes are queries that name something the catalog lacks (named 0) or that name nothing
    but score low; covered queries score anywhere and have what they name, often only a
    little of it (named 0.3). A hole query with a high best cosine is the case the linear
    ``named`` signal loses, since 0 sits next to 0.3 on its scale.
    """
    rng = np.random.default_rng(1)
    rows, labels = [], []
    for _ in range(40):  # holes: half name a missing thing at any cosine, half score low
        named = 0.0 if rng.random() < 0.5 else 1.0
        top = rng.normal(0.55 if named == 0.0 else 0.35, 0.08, 10)
        rows.append(signals_of(top, named=named))
        labels.append(True)
    for _ in range(80):  # covered: anywhere on the scale, what they name present (maybe rare)
        rows.append(signals_of(rng.normal(0.55, 0.08, 10), named=float(rng.choice([0.3, 0.6, 1.0]))))
        labels.append(False)
    assert rows[0]["named_none"] in (0.0, 1.0) and signals_of([0.5], named=0.3)["named_none"] == 0.0
    full = fit_detector(rows, labels, encoder_id="enc@1")
    linear = fit_detector([{k: v for k, v in r.items() if k != "named_none"} for r in rows], labels,
                          encoder_id="enc@1")
    top = np.linspace(0.72, 0.45, 10)  # best cosine above most covered queries'
    high = signals_of(top, named=0.0)  # ... but it names something no track has
    assert full.assess(top, named=0.0).weak
    assert not linear.assess(top, named=0.0).weak  # the linear signal alone lets the cosine win
    assert full.probability(high) > linear.probability({k: v for k, v in high.items() if k != "named_none"})
    assert auroc([full.probability(r) for r in rows], labels) > auroc(
        [linear.probability({k: v for k, v in r.items() if k != "named_none"}) for r in rows], labels)
