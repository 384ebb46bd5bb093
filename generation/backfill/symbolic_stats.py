"""Symbolic statistics of generated and corpus melodies, as MusPy defines them.

MusPy (``muspy.metrics``) is the reference for three scores that need no model: pitch-class
entropy, scale consistency and groove consistency. Installing MusPy would pull a second music
library and its own I/O stack for three formulas, so they are written here over our
:class:`~generation.symbolic.render.Events`, following MusPy's definitions (Dong et al., 2020):

- **pitch-class entropy**: Shannon entropy (bits) of the 12-bin pitch-class histogram; 0 for a
  single repeated pitch class, log2(12) = 3.585 for all twelve equally;
- **scale consistency**: the largest fraction of notes that fall in one major or minor scale,
  over the 24 scales;
- **groove consistency**: ``1 - mean Hamming distance`` between the onset-position vectors of
  consecutive bars (MusPy's measure resolution; here 12 steps per quarter note), divided by
  the vector length: 1 when every bar has the same rhythm.

What they mean for backfill: a generator far from the corpus on these (much higher entropy,
lower scale consistency, lower groove consistency) makes music that is less tonal or less
regular than the catalog it fills holes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from generation.symbolic.render import Events

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
_SCALES = [np.isin(np.arange(12), (s + r) % 12) for s in (_MAJOR, _MINOR) for r in range(12)]
_STEPS_PER_QL = 12


def pitch_class_entropy(pitch: np.ndarray) -> float:
    """Entropy in bits of the pitch-class histogram (NaN without notes)."""
    p = np.asarray(pitch, np.int64)
    if not len(p):
        return float("nan")
    h = np.bincount(p % 12, minlength=12).astype(np.float64)
    h = h[h > 0] / h.sum()
    return float(-(h * np.log2(h)).sum())


def scale_consistency(pitch: np.ndarray) -> float:
    """Largest share of notes inside one of the 24 major/minor scales (NaN without notes)."""
    p = np.asarray(pitch, np.int64)
    if not len(p):
        return float("nan")
    pc = p % 12
    return float(max(s[pc].mean() for s in _SCALES))


def groove_consistency(onset_ql: np.ndarray, bar_ql: float) -> float:
    """``1 -`` mean normalised Hamming distance of consecutive bars' onset grids (NaN < 2 bars)."""
    on = np.asarray(onset_ql, np.float64)
    if not len(on) or bar_ql <= 0:
        return float("nan")
    steps = max(1, int(round(bar_ql * _STEPS_PER_QL)))
    pos = np.round((on - on.min()) * _STEPS_PER_QL).astype(np.int64)
    bars = pos // steps
    n_bars = int(bars.max()) + 1
    if n_bars < 2:
        return float("nan")
    grid = np.zeros((n_bars, steps), bool)
    grid[bars, pos % steps] = True
    return float(1.0 - np.mean(np.abs(grid[1:] ^ grid[:-1]).sum(1) / steps))


def melody_stats(ev: Events) -> dict[str, float]:
    """The three statistics of the top voice (the melody) of ``ev``."""
    mask = ev.voice == ev.voice.min() if len(ev.voice) else np.zeros(0, bool)
    return {"pitch_class_entropy": pitch_class_entropy(ev.pitch[mask]),
            "scale_consistency": scale_consistency(ev.pitch[mask]),
            "groove_consistency": groove_consistency(ev.onset[mask], ev.bar_ql)}


def events_of_score(score: Mapping[str, Any]) -> Events:
    """The note events of a generated score (``tunescope-events/1``, see ``score_json``)."""
    from generation.symbolic.tokens import METERS

    bar_ql, beat_ql = METERS.get(str(score.get("meter")), (4.0, 1.0))
    n = len(score["pitch"])
    return Events(onset=np.asarray(score["onset_ql"], np.float64),
                  dur=np.asarray(score["dur_ql"], np.float64),
                  pitch=np.asarray(score["pitch"], np.int16),
                  voice=np.asarray(score["voice"], np.int16), strength=np.zeros(n, np.float32),
                  length_ql=float(score["length_ql"]),
                  n_voices=int(max(score["voice"], default=0)) + 1, bar_ql=bar_ql, beat_ql=beat_ql)


def summarise(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each statistic over pieces (NaNs skipped)."""
    keys = ("pitch_class_entropy", "scale_consistency", "groove_consistency")
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows if np.isfinite(r.get(k, np.nan))])
        out[k] = float(v.mean()) if len(v) else float("nan")
    return out
