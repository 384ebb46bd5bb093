"""The musical attributes a conversation talks about, read from a track's metadata alone.

Tempo, mode, meter and ensemble are catalog columns; *density* (how many parts sound at once)
and *register* (how high the instruments sit) are derived here from the instruments, because
the catalog stores who plays, not how many lines or how high. Both the steering (hard bounds
relative to a shown track) and the evaluation's simulated user read these same facts, so a
critique means the same thing to both; neither reads the encoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: Mode -> the family a listener hears (major or minor third above the tonic).
MODE_FAMILY = {"major": "major", "ionian": "major", "mixolydian": "major", "lydian": "major",
               "minor": "minor", "aeolian": "minor", "dorian": "minor", "phrygian": "minor",
               "locrian": "minor"}

#: Meter numerator -> class (2/4 and 4/4 duple, 3/4 triple, 6/8 compound).
METER_CLASSES = ("duple", "triple", "compound")

#: Instrument -> family (the words people use for a group: "strings", "woodwinds").
INSTRUMENT_FAMILY = {
    "fiddle": "strings", "violin": "strings", "viola": "strings", "cello": "strings",
    "double bass": "strings", "string ensemble": "strings",
    "flute": "woodwind", "tin whistle": "woodwind", "clarinet": "woodwind",
    "recorder": "woodwind", "oboe": "woodwind", "bassoon": "woodwind", "piccolo": "woodwind",
    "accordion": "free reed", "harmonica": "free reed", "concertina": "free reed",
    "bagpipes": "bagpipes", "piano": "keyboard", "harpsichord": "keyboard",
    "guitar": "plucked", "harp": "plucked", "banjo": "plucked", "mandolin": "plucked",
    "trumpet": "brass", "french horn": "brass", "trombone": "brass", "tuba": "brass",
    "voice": "voice", "choir": "voice", "organ": "organ",
}

#: Where an instrument sits: -1 low, 0 middle, +1 high (register critiques: higher / lower).
INSTRUMENT_REGISTER = {
    "cello": -1.0, "double bass": -1.0, "bassoon": -1.0, "trombone": -1.0, "tuba": -1.0,
    "french horn": -0.5, "organ": -0.5, "viola": -0.5, "string ensemble": -0.25,
    "choir": -0.25, "guitar": -0.25, "harp": 0.0, "piano": 0.0, "harpsichord": 0.0,
    "accordion": 0.0, "voice": 0.0, "banjo": 0.25, "clarinet": 0.25, "bagpipes": 0.5,
    "trumpet": 0.5, "oboe": 0.5, "harmonica": 0.5, "fiddle": 0.75, "violin": 0.75,
    "mandolin": 0.75, "flute": 1.0, "recorder": 1.0, "tin whistle": 1.0, "piccolo": 1.0,
}

#: Ensembles that play several independent lines even with one instrument name.
_POLYPHONIC = ("quartet", "orchestra", "choir", "consort", "organ", "piano", "harpsichord",
               "guitar", "ensemble", "band")


def mode_family(mode: str | None) -> str | None:
    """``major`` or ``minor`` for a mode name, None when unknown."""
    return MODE_FAMILY.get((mode or "").strip().lower())


def meter_class(meter: str | None) -> str | None:
    """``duple``, ``triple`` or ``compound`` for a time signature ("6/8"), None when unknown."""
    if not meter or "/" not in meter:
        return None
    try:
        num = int(meter.split("/")[0])
    except ValueError:
        return None
    if num in (6, 9, 12):
        return "compound"
    if num == 3:
        return "triple"
    return "duple" if num in (1, 2, 4, 8) else None


def instrument_families(instruments: Iterable[str]) -> set[str]:
    """The families of a track's instruments (unknown names are their own family)."""
    return {INSTRUMENT_FAMILY.get(i.strip().lower(), i.strip().lower()) for i in instruments}


def register_of(instruments: Sequence[str]) -> float | None:
    """Mean register of the instruments (-1 low .. +1 high); None when none is known."""
    vals = [INSTRUMENT_REGISTER[i.strip().lower()] for i in instruments
            if i.strip().lower() in INSTRUMENT_REGISTER]
    return sum(vals) / len(vals) if vals else None


def density_of(instruments: Sequence[str], ensemble: str | None) -> float:
    """How many lines sound at once, roughly: 1 for a melody instrument, more for ensembles."""
    name = (ensemble or "").lower()
    parts = float(len(instruments) or 1)
    if any(w in name for w in _POLYPHONIC) or any(
            i.lower() in ("piano", "harpsichord", "organ", "guitar", "choir", "string ensemble")
            for i in instruments):
        parts = max(parts, 3.0)
    return parts


def facts(meta: Any) -> dict[str, Any]:
    """The conversational attributes of one track (a ``TrackMeta`` or an ORM ``Track``)."""
    instruments = list(getattr(meta, "instruments", None) or ())
    return {
        "tempo": getattr(meta, "tempo_bpm", None),
        "mode": mode_family(getattr(meta, "mode", None)),
        "meter": meter_class(getattr(meta, "meter", None)),
        "families": instrument_families(instruments),
        "instruments": {i.lower() for i in instruments},
        "density": density_of(instruments, getattr(meta, "ensemble", None)),
        "register": register_of(instruments),
        "tune_type": (getattr(meta, "tune_type", None) or "").lower() or None,
        "collection": (getattr(meta, "collection", None) or "").lower() or None,
        "artist": getattr(meta, "artist", None),
        "ensemble": getattr(meta, "ensemble", None),
    }
