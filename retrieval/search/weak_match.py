"""Weak-match detection: does the catalog hold what the query asked for?

A weak match is a *result state*, never an error: the page is still answered, and the caller
(the search routes) may queue generative backfill. The rule is a logistic model over a few
signals of the result, fitted on queries aimed at holes made in a copy of the catalog versus
queries aimed at covered areas (``tunescope eval-backfill --fit-detector``), and stored per
encoder as a small JSON file next to the prior's weights. Why these signals:

- ``top1``: the best cosine between the query and any track. On its own it confuses "a query
  the encoder reads poorly" with "a query the catalog lacks", since text–audio cosines sit on
  a narrow, query-dependent scale;
- ``top10``: the mean of the ten best cosines. A covered area answers with many close tracks,
  a hole with one or two stragglers from a neighbouring area;
- ``gap``: ``top1 - top10``. A single close track above a flat tail is a near-miss, not a
  cluster;
- ``prior_nn``: how close the diffusion prior's samples (its guesses of where the *audio* for
  the query lives) sit to their nearest catalog track, averaged over samples. This one is
  audio-to-audio, on the scale of the catalog's own neighbour distances, and it is the signal
  that is about the catalog rather than the text encoder. It is only present when the caller
  sampled the prior (generative search, or plain search with backfill enabled);
- ``named``: how much of the catalog has what the query names outright (a tune type, an
  instrument, an ensemble, a mode; :mod:`retrieval.search.named`), ``log1p(matches) /
  log1p(catalog size)``: 0 when "bagpipe music" meets a catalog without bagpipes. It is 1 for
  a query that names nothing (the empty filter passes every track).
- ``named_none``: 1 when the query names something and *no* catalog track has it (``named ==
  0``), else 0. Absence is not the low end of scarcity: "bagpipe music" against a catalog with
  no bagpipes is a hole whatever the cosines say, while three bagpipe tracks are thin cover.
  A logistic over ``named`` alone is linear in it, so it can only weigh zero a little more
  than "rare"; the indicator lets the fit make absence decisive. (It was added after reading
  the rows of ``eval-backfill``, where "a sailor's hornpipe on the fiddle" named a missing tune
  type yet scored 0.06 because its best cosine was high; leave-one-hole-out AUROC 0.890 ->
  0.932 on encoder v2's rows and 0.914 -> 0.953 on v1's.)

Without a fitted file the detector falls back to the fixed threshold the service always had
(``top1 < 0.3``), says so in its reason, and marks itself ``calibrated = False``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Signals in a fixed order (the model's feature vector).
SIGNALS = ("top1", "top10", "gap", "prior_nn", "named", "named_none")
#: Best cosines the signals read (``top10``); callers fetch at least this many candidates.
TOP_N = 10
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The uncalibrated rule: ``top1 < 0.3`` is weak (the service's historic threshold), as a
#: steep logistic so that its score is still a number in [0, 1].
_FALLBACK_THRESHOLD = 0.3
_FALLBACK_SLOPE = 40.0


@dataclass(frozen=True)
class WeakMatch:
    """The verdict on one result.

    Attributes:
        weak: the catalog probably lacks what was asked for.
        score: the model's probability of "weak" in [0, 1] (``weak`` is ``score >= threshold``).
        threshold: the decision threshold on ``score``.
        reason: one sentence a person can read.
        signals: the signal values the verdict was made from.
    """

    weak: bool
    score: float
    threshold: float
    reason: str
    signals: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (rounded) form for responses and provenance."""
        return {"weak": self.weak, "score": round(self.score, 4),
                "threshold": round(self.threshold, 4), "reason": self.reason,
                "signals": {k: round(v, 4) for k, v in self.signals.items()}}


def signals_of(top_scores: np.ndarray | Sequence[float],
               prior_nn: np.ndarray | Sequence[float] | None = None,
               named: float | None = None) -> dict[str, float]:
    """The detector's signals from the best cosines of a result (best first or not).

    Args:
        top_scores: cosine scores of the best hits (at least the first ten when there are ten).
        prior_nn: per prior sample, the cosine to its nearest catalog track (None: not sampled).
        named: :func:`retrieval.search.named.named_support` of the query (None: not known,
            e.g. an audio query).
    """
    s = np.sort(np.asarray(top_scores, np.float64).reshape(-1))[::-1]
    if s.size == 0:
        out = {"top1": -1.0, "top10": -1.0, "gap": 0.0}
    else:
        top10 = float(s[:TOP_N].mean())
        out = {"top1": float(s[0]), "top10": top10, "gap": float(s[0]) - top10}
    if prior_nn is not None and len(prior_nn):
        out["prior_nn"] = float(np.mean(np.asarray(prior_nn, np.float64)))
    if named is not None:
        out["named"] = float(named)
        out["named_none"] = 1.0 if float(named) <= 0.0 else 0.0
    return out


@dataclass(frozen=True)
class WeakMatchDetector:
    """A logistic rule over :data:`SIGNALS`, standardised with the fit's means and scales.

    ``prior_nn`` may be missing at run time (plain search without the prior): the model then
    uses the signal's fitted mean, i.e. it abstains on it, and ``fallback`` weights fitted
    without it are used when present.

    Attributes:
        encoder_id: the encoder whose score scale it was fitted on.
        weights: coefficient per standardised signal.
        bias: intercept.
        mean, scale: standardisation of each signal.
        threshold: decision threshold on the probability.
        without_prior: a second model fitted without ``prior_nn`` (weights, bias), or None.
        calibrated: False for the fixed-threshold fallback.
        fit: how it was fitted (command, data, cross-validated AUROC), for the record.
    """

    encoder_id: str | None
    weights: Mapping[str, float]
    bias: float
    mean: Mapping[str, float]
    scale: Mapping[str, float]
    threshold: float = 0.5
    without_prior: tuple[Mapping[str, float], float] | None = None
    calibrated: bool = True
    fit: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def fallback(cls, encoder_id: str | None = None,
                 threshold: float = _FALLBACK_THRESHOLD) -> WeakMatchDetector:
        """The uncalibrated rule ``top1 < threshold``."""
        return cls(encoder_id=encoder_id, weights={"top1": -_FALLBACK_SLOPE},
                   bias=_FALLBACK_SLOPE * threshold, mean={"top1": 0.0}, scale={"top1": 1.0},
                   calibrated=False, fit={"rule": f"top1 < {threshold}"})

    def probability(self, signals: Mapping[str, float]) -> float:
        """P(weak) for one set of signals."""
        weights, bias = self.weights, self.bias
        if "prior_nn" not in signals and self.without_prior is not None:
            weights, bias = self.without_prior
        z = bias
        for name, w in weights.items():
            if name not in signals:
                continue  # standardised value 0: the fitted mean, no evidence either way
            z += w * (signals[name] - self.mean.get(name, 0.0)) / (self.scale.get(name, 1.0) or 1.0)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def assess(self, top_scores: np.ndarray | Sequence[float],
               prior_nn: np.ndarray | Sequence[float] | None = None,
               named: float | None = None) -> WeakMatch:
        """The verdict on a result whose best cosines are ``top_scores``."""
        sig = signals_of(top_scores, prior_nn, named)
        p = self.probability(sig)
        # Nothing passed the filters: the catalog lacks it whatever the model says of top1 = -1.
        weak = bool(p >= self.threshold) or sig["top1"] < -0.5
        return WeakMatch(weak=weak, score=p, threshold=self.threshold,
                         reason=self._reason(sig, weak), signals=sig)

    def _reason(self, sig: Mapping[str, float], weak: bool) -> str:
        if sig["top1"] < -0.5:
            return "no track passed the filters"
        if not self.calibrated:
            rel = "below" if weak else "at or above"
            return (f"best match {sig['top1']:.2f} is {rel} the fixed threshold "
                    f"{-self.bias / self.weights['top1']:.2f} (detector not calibrated for "
                    f"this encoder)")
        parts = [f"best match {sig['top1']:.2f} (covered queries average "
                 f"{self.fit.get('covered_top1', float('nan')):.2f})"]
        if "prior_nn" in sig:
            parts.append(f"the prior's predicted tracks sit {sig['prior_nn']:.2f} from their "
                         f"nearest catalog track (covered: "
                         f"{self.fit.get('covered_prior_nn', float('nan')):.2f})")
        if sig.get("named", 1.0) == 0.0:
            parts.insert(0, "no catalog track has what the query names")
        verdict = "the catalog seems to lack this" if weak else "the catalog covers this"
        return f"{verdict}: " + "; ".join(parts)

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        """The file form (see :func:`load_detector`)."""
        return {"format": "tunescope-weak-match/1", "encoder_id": self.encoder_id,
                "weights": dict(self.weights), "bias": self.bias, "mean": dict(self.mean),
                "scale": dict(self.scale), "threshold": self.threshold,
                "without_prior": None if self.without_prior is None else
                {"weights": dict(self.without_prior[0]), "bias": self.without_prior[1]},
                "fit": dict(self.fit)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WeakMatchDetector:
        """Inverse of :meth:`to_json`."""
        if d.get("format") != "tunescope-weak-match/1":
            raise ValueError(f"not a weak-match detector file (format {d.get('format')!r})")
        wp = d.get("without_prior")
        return cls(encoder_id=d.get("encoder_id"), weights=dict(d["weights"]),
                   bias=float(d["bias"]), mean=dict(d["mean"]), scale=dict(d["scale"]),
                   threshold=float(d.get("threshold", 0.5)),
                   without_prior=None if wp is None else (dict(wp["weights"]), float(wp["bias"])),
                   fit=dict(d.get("fit", {})))

    def save(self, path: Path) -> Path:
        """Write the JSON file (parents created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return path


def detector_path(encoder_id: str, weights_dir: str | Path | None = None) -> Path:
    """``clap-mini@4ae131cd197b`` -> ``<dir>/weak-match-clap-mini_4ae131cd197b.json``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id.replace("@", "_"))
    return Path(weights_dir or WEIGHTS_DIR) / f"weak-match-{safe}.json"


def load_detector(encoder_id: str, weights_dir: str | Path | None = None,
                  fallback_threshold: float = _FALLBACK_THRESHOLD) -> WeakMatchDetector:
    """The fitted detector of ``encoder_id``, or the fixed-threshold fallback when none exists.

    A file fitted for another encoder is never used: cosine scales differ between encoders.
    """
    p = detector_path(encoder_id, weights_dir)
    if p.is_file():
        det = WeakMatchDetector.from_json(json.loads(p.read_text()))
        if det.encoder_id == encoder_id:
            return det
    return WeakMatchDetector.fallback(encoder_id, fallback_threshold)


# ---------------------------------------------------------------------- fitting

def _logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 100) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (x standardised, few features)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -60, 60)))
        g = xb.T @ (p - y) + reg * w
        h = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def fit_detector(signals: Sequence[Mapping[str, float]], weak: Sequence[bool], *,
                 encoder_id: str | None, l2: float = 1.0, threshold: float = 0.5,
                 names: Sequence[str] = SIGNALS, fit_info: Mapping[str, Any] | None = None
                 ) -> WeakMatchDetector:
    """Fit the logistic rule on labelled results (``weak`` True: a query aimed at a hole).

    Signals absent from every row are dropped; a second model without ``prior_nn`` is fitted
    when ``prior_nn`` is present, for callers that do not sample the prior.
    """
    y = np.asarray(weak, np.float64)
    if len(y) != len(signals) or not len(y) or y.min() == y.max():
        raise ValueError("fitting needs both weak and covered examples")
    used = [n for n in names if all(n in s for s in signals)]
    x = np.array([[s[n] for n in used] for s in signals], np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    w, b = _logistic(z, y, l2)
    without = None
    if "prior_nn" in used:
        keep = [i for i, n in enumerate(used) if n != "prior_nn"]
        w2, b2 = _logistic(z[:, keep], y, l2)
        without = ({used[i]: float(v) for i, v in zip(keep, w2, strict=True)}, b2)
    cov = y == 0
    info = dict(fit_info or {})
    info.setdefault("covered_top1", float(np.mean([s["top1"] for s, c in zip(signals, cov, strict=True) if c])))
    if "prior_nn" in used:
        info.setdefault("covered_prior_nn", float(np.mean(
            [s["prior_nn"] for s, c in zip(signals, cov, strict=True) if c])))
    return WeakMatchDetector(
        encoder_id=encoder_id, weights={n: float(v) for n, v in zip(used, w, strict=True)},
        bias=b, mean={n: float(v) for n, v in zip(used, mean, strict=True)},
        scale={n: float(v) for n, v in zip(used, scale, strict=True)}, threshold=threshold,
        without_prior=without, fit=info)


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann–Whitney; ties count one half)."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(positive, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))
