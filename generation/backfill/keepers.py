"""From a candidate to what the catalog stores about it: track fields, and the melody the gate reads.

A generated track must be findable the way catalog tracks are (filters on meter, mode, key,
tempo, tune type, ensemble, instruments; tags), so its fields are read off what was actually
played: the decoded header of the sampled melody, the performance (ensemble, tempo,
transposition) and the score. A backend without a symbolic score (an audio model) gets what
the request asked for instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from generation.generators.base import Candidate

_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # as the demo catalog spells keys
_UNKNOWN = (None, "", "other", "unknown")


def melody_notes(score: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The melody of a ``tunescope-events/1`` score as ``(pitch [m], onset_ql [m])``, else None.

    The melody is voice 0: the sampled line. The other voices (block chords, the bass) are
    derived from it by rule, so they say nothing about copying; testing them would only add
    chance matches of bar-long chord roots. Where voice 0 sounds two notes at once the top
    one is the line (the gate's skyline rule).
    """
    if not isinstance(score, Mapping) or score.get("format") != "tunescope-events/1":
        return None
    voice = np.asarray(score.get("voice", []), np.int64)
    if not len(voice):
        return None
    sel = voice == 0
    onset = np.asarray(score["onset_ql"], np.float64)[sel]
    pitch = np.asarray(score["pitch"], np.int64)[sel]
    order = np.lexsort((-pitch, onset))
    onset, pitch = onset[order], pitch[order]
    first = np.ones(len(onset), bool)
    first[1:] = np.round(onset[1:] * 48) != np.round(onset[:-1] * 48)
    return pitch[first], onset[first]


def track_metadata(candidate: Candidate, attributes: Mapping[str, str], index: int) -> dict[str, Any]:
    """Track fields for a kept candidate (``index``: its place in the job, for the title).

    Returns:
        ``title, tags, tune_type, meter, mode, key, tempo_bpm, ensemble, instruments`` (Track
        columns) plus ``score`` (the score_json dict) and ``generation`` (the candidate's
        conditioning record), which :func:`index.repo.backfill.store_generated` keeps in
        ``Track.extra``.
    """
    from retrieval.captions import meter_class, tempo_bucket

    cond = candidate.conditioning
    header = dict(cond.get("header") or {})
    score = candidate.score if isinstance(candidate.score, Mapping) else {}
    pick = lambda name: next((v for v in (header.get(name), attributes.get(name)) if v not in _UNKNOWN), None)  # noqa: E731
    mode = pick("mode")
    meter = pick("meter") or score.get("meter")
    tune_type = pick("tune_type")
    ens_name = cond.get("ensemble") or pick("ensemble")
    bpm = cond.get("bpm")
    key = None
    if mode in ("major", "minor") and "transpose" in cond:
        key = _NAMES[((9 if mode == "minor" else 0) + int(cond["transpose"])) % 12]
    instruments, family = _instruments(score, ens_name)
    tags = {"generated", tune_type, mode, meter_class(meter), family,
            tempo_bucket(float(bpm)) if bpm is not None else None}
    what = (tune_type or "tune").capitalize()
    title = f"{what} in {key} {mode}" if key else what
    title += f" for {ens_name}" if ens_name else ""
    meta: dict[str, Any] = {
        "title": f"{title} (generated #{index + 1})", "tags": sorted(t for t in tags if t),
        "tune_type": tune_type, "meter": meter, "mode": mode, "key": key,
        "tempo_bpm": None if bpm is None else float(bpm), "ensemble": ens_name,
        "instruments": instruments, "score": dict(score) if score else None, "generation": cond}
    return {k: v for k, v in meta.items() if v is not None}


def _instruments(score: Mapping[str, Any], ens_name: str | None) -> tuple[list[str], str | None]:
    """(instruments, family) of the ensemble that played it."""
    from generation.generators.symbolic_render import ensemble_for

    if not ens_name:
        return list(score.get("instruments") or []), None
    try:
        ens = ensemble_for(ens_name)
    except KeyError:
        return list(score.get("instruments") or []), None
    return list(score.get("instruments") or ens.instruments), ens.family
