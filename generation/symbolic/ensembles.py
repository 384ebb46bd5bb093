"""Plausible instrumentations, as General MIDI programs, and which styles may use them.

A melody (one voice) is played by one or two instruments in unison or octaves, sometimes over a
tonic-and-fifth drone; a polyphonic score gives each part its own instrument. Every ensemble
has one instrument family (``mixed`` for combinations) so evaluations can ask about it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ensemble:
    """One instrumentation.

    Attributes:
        name: what a caption calls it ("string quartet", "solo fiddle").
        family: strings, keyboard, organ, woodwind, brass, voice, free reed, plucked, bagpipes,
            or mixed.
        instruments: instrument names, top part first (captions and metadata).
        programs: GM programs; for a melody ensemble all play the single voice, for a
            polyphonic one they are assigned to parts top-down (cycling the last for extra parts).
        octaves: octave shift per program.
        polyphonic: plays every part of a score (else the top part only).
        drone: GM program of a tonic drone, or None.
    """

    name: str
    family: str
    instruments: tuple[str, ...]
    programs: tuple[int, ...]
    octaves: tuple[int, ...]
    polyphonic: bool
    drone: int | None = None


MELODY_ENSEMBLES: dict[str, Ensemble] = {e.name: e for e in [
    Ensemble("solo fiddle", "strings", ("fiddle",), (110,), (0,), False),
    Ensemble("solo violin", "strings", ("violin",), (40,), (0,), False),
    Ensemble("solo cello", "strings", ("cello",), (42,), (-1,), False),
    Ensemble("solo flute", "woodwind", ("flute",), (73,), (0,), False),
    Ensemble("tin whistle", "woodwind", ("tin whistle",), (78,), (1,), False),
    Ensemble("clarinet", "woodwind", ("clarinet",), (71,), (0,), False),
    Ensemble("recorder", "woodwind", ("recorder",), (74,), (0,), False),
    Ensemble("oboe", "woodwind", ("oboe",), (68,), (0,), False),
    Ensemble("accordion", "free reed", ("accordion",), (21,), (0,), False),
    Ensemble("harmonica", "free reed", ("harmonica",), (22,), (0,), False),
    Ensemble("bagpipes", "bagpipes", ("bagpipes",), (109,), (0,), False, drone=109),
    Ensemble("solo piano", "keyboard", ("piano",), (0,), (0,), False),
    Ensemble("harpsichord", "keyboard", ("harpsichord",), (6,), (0,), False),
    Ensemble("nylon-string guitar", "plucked", ("guitar",), (24,), (0,), False),
    Ensemble("harp", "plucked", ("harp",), (46,), (0,), False),
    Ensemble("banjo", "plucked", ("banjo",), (105,), (0,), False),
    Ensemble("trumpet", "brass", ("trumpet",), (56,), (0,), False),
    Ensemble("french horn", "brass", ("french horn",), (60,), (-1,), False),
    Ensemble("solo voice", "voice", ("voice",), (53,), (0,), False),
    Ensemble("church organ", "organ", ("organ",), (19,), (0,), False),
    Ensemble("fiddle and flute", "mixed", ("fiddle", "flute"), (110, 73), (0, 0), False),
    Ensemble("fiddle and accordion", "mixed", ("fiddle", "accordion"), (110, 21), (0, 0), False),
    Ensemble("flute and harp", "mixed", ("flute", "harp"), (73, 46), (0, -1), False),
]}

POLY_ENSEMBLES: dict[str, Ensemble] = {e.name: e for e in [
    Ensemble("string quartet", "strings", ("violin", "violin", "viola", "cello"),
             (40, 40, 41, 42), (0, 0, 0, 0), True),
    Ensemble("string orchestra", "strings", ("string ensemble",), (48,), (0,), True),
    Ensemble("choir", "voice", ("choir",), (52,), (0,), True),
    Ensemble("church organ", "organ", ("organ",), (19,), (0,), True),
    Ensemble("solo piano", "keyboard", ("piano",), (0,), (0,), True),
    Ensemble("harpsichord", "keyboard", ("harpsichord",), (6,), (0,), True),
    Ensemble("brass quartet", "brass", ("trumpet", "trumpet", "french horn", "trombone"),
             (56, 56, 60, 57), (0, 0, 0, 0), True),
    Ensemble("woodwind quartet", "woodwind", ("flute", "oboe", "clarinet", "bassoon"),
             (73, 68, 71, 70), (0, 0, 0, 0), True),
    Ensemble("recorder consort", "woodwind", ("recorder",), (74,), (0,), True),
    Ensemble("guitar", "plucked", ("guitar",), (24,), (0,), True),
]}

#: Which ensembles (with weights) each family of the corpus is rendered with.
FAMILY_ENSEMBLES: dict[str, dict[str, float]] = {
    "irish": {"solo fiddle": 3, "solo flute": 2, "tin whistle": 2, "accordion": 2, "bagpipes": 1,
              "fiddle and flute": 2, "fiddle and accordion": 1, "solo piano": 1, "banjo": 1,
              "harp": 1, "nylon-string guitar": 1, "harmonica": 1, "solo cello": 0.5,
              "clarinet": 0.5, "church organ": 0.3, "solo violin": 1},
    "scottish": {"solo fiddle": 3, "bagpipes": 2, "accordion": 2, "solo flute": 1,
                 "fiddle and accordion": 1, "solo piano": 1, "harp": 1, "tin whistle": 1,
                 "solo cello": 0.5, "solo violin": 1, "harmonica": 0.5, "french horn": 0.3},
    "folk": {"solo fiddle": 2, "solo flute": 2, "accordion": 1, "banjo": 1, "tin whistle": 1,
             "nylon-string guitar": 1, "trumpet": 0.5, "harmonica": 1, "clarinet": 1},
    "essen": {"solo voice": 3, "solo flute": 1, "recorder": 1, "solo piano": 1, "accordion": 1,
              "nylon-string guitar": 1, "solo violin": 1, "clarinet": 1, "oboe": 1,
              "harp": 0.5, "trumpet": 0.5, "church organ": 0.5, "flute and harp": 1,
              "harpsichord": 0.5, "french horn": 0.3, "solo cello": 0.5},
    "chorale": {"choir": 3, "church organ": 3, "string quartet": 1, "brass quartet": 1,
                "woodwind quartet": 1, "solo piano": 1, "string orchestra": 1, "harpsichord": 0.5,
                "recorder consort": 0.5},
    "quartet": {"string quartet": 6, "string orchestra": 1, "solo piano": 1,
                "woodwind quartet": 0.5, "harpsichord": 0.3},
    "renaissance": {"choir": 4, "recorder consort": 1, "church organ": 1, "brass quartet": 1,
                    "string orchestra": 0.5, "harpsichord": 0.5, "guitar": 0.3},
    "medieval": {"recorder consort": 2, "choir": 2, "harpsichord": 1, "guitar": 1},
}


def ensemble(name: str, polyphonic: bool) -> Ensemble:
    """Look up an ensemble by name, preferring the table that fits the score.

    An ABC tune with a second voice or chords is polyphonic but was drawn from a melody
    family's table (bagpipes, accordion...): then every part is played by that instrument.
    """
    first, second = (POLY_ENSEMBLES, MELODY_ENSEMBLES) if polyphonic else (MELODY_ENSEMBLES, POLY_ENSEMBLES)
    if name in first:
        return first[name]
    if name in second:
        return second[name]
    raise KeyError(f"unknown ensemble {name!r}")


def programs_for(ens: Ensemble, n_voices: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """(programs, octave shifts) per voice for :class:`generation.symbolic.render.RenderSpec`."""
    if not ens.polyphonic:
        return (ens.programs,), (ens.octaves,)
    progs = tuple((ens.programs[min(v, len(ens.programs) - 1)],) for v in range(n_voices))
    octs = tuple((ens.octaves[min(v, len(ens.octaves) - 1)],) for v in range(n_voices))
    return progs, octs
