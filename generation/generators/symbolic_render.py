"""From a sampled melody to audio, and from a query's words to forced attribute tokens.

Rendering goes through the demo catalog's renderer (:func:`generation.symbolic.render.render`)
with the catalog's ensembles, so a generated piece sounds like the catalog it fills holes in:

- a **melody ensemble** (solo fiddle, accordion, bagpipes with its drone...) plays the melody;
- a **polyphonic ensemble** (string quartet, choir, organ, brass quartet...) plays the melody
  over a bass-and-chords accompaniment from :func:`generation.symbolic.arrange.accompany`
  ("block" chords, the bar's triad, the bass an octave under the root), one part per voice;
- tempo: the tempo class (predicted or asked for) picks a heard-beat rate, which becomes
  quarter notes per minute through the melody's own heard beat, as in the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from generation.errors import GenerationError
from generation.symbolic import tokens as T
from generation.symbolic.arrange import accompany, estimate_key
from generation.symbolic.ensembles import MELODY_ENSEMBLES, POLY_ENSEMBLES, Ensemble, ensemble, programs_for
from generation.symbolic.render import DEFAULT_SOUNDFONT, Events, RenderSpec, render

#: Heard beats per minute by tempo class (``retrieval.captions.tempo_bucket``'s thresholds).
TEMPO_BPM = {"slow": (58.0, 76.0), "moderate": (86.0, 114.0), "fast": (124.0, 160.0)}
_COMPOUND = ("6/8", "9/8", "12/8")

_METER_WORDS = {"waltz": "3/4", "jig": "6/8", "slip jig": "9/8", "reel": "4/4", "hornpipe": "4/4",
                "march": "2/4", "polka": "2/4", "strathspey": "4/4", "slide": "12/8"}
#: A meter class named in words -> its most common meter in the corpus (captions say "in a
#: triple meter", not "3/4"; a named tune type or an explicit meter wins over these).
_METER_CLASS_WORDS = {"duple": "4/4", "triple": "3/4", "compound": "6/8"}
_TEMPO_WORDS = {"slow": "slow", "gentle": "slow", "stately": "slow", "calm": "slow", "relaxed": "slow",
                "moderate": "moderate", "mid-tempo": "moderate", "steady": "moderate",
                "fast": "fast", "quick": "fast", "lively": "fast", "energetic": "fast", "up-tempo": "fast"}
_MODE_WORDS = {"minor": "minor", "melancholic": "minor", "sad": "minor", "dark": "minor",
               "dorian": "minor", "aeolian": "minor", "major": "major", "happy": "major",
               "bright": "major", "cheerful": "major", "mixolydian": "major"}
_ENSEMBLE_WORDS = {"fiddle": "solo fiddle", "violin": "solo violin", "cello": "solo cello",
                   "flute": "solo flute", "whistle": "tin whistle", "piano": "solo piano",
                   "organ": "church organ", "voice": "solo voice", "singer": "solo voice",
                   "pipes": "bagpipes", "bagpipe": "bagpipes", "quartet": "string quartet",
                   "strings": "string orchestra", "orchestra": "string orchestra", "choir": "choir",
                   "brass": "brass quartet", "woodwinds": "woodwind quartet", "guitar": "nylon-string guitar"}


#: Instrument families whose members, named together, make a standard ensemble ("two violins,
#: viola and cello" is a string quartet): two or more different members named -> that ensemble.
_FAMILIES = {
    "string quartet": ("violins?", "violas?", "cellos?", "violoncellos?", "double bass"),
    "woodwind quartet": ("flutes?", "oboes?", "clarinets?", "bassoons?"),
    "brass quartet": ("trumpets?", "trombones?", "tubas?", "(?:french )?horns?"),
}


def _family_ensemble(text: str) -> str | None:
    """The ensemble of a family when the text names two or more of its different instruments."""
    for name, members in _FAMILIES.items():
        found = {m for m in members if re.search(rf"(?<![a-z]){m}(?![a-z])", text)}
        if len(found) >= 2:
            return name
    return None


def _find(text: str, words: Mapping[str, str]) -> str | None:
    """The value of the longest word of ``words`` found in ``text`` (whole words), else None."""
    for w in sorted(words, key=len, reverse=True):
        if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text):
            return words[w]
    return None


def attributes_from_text(text: str | None) -> dict[str, str]:
    """Attribute values a query spells out: ``"a slow waltz for accordion"`` -> tempo, meter, type, ensemble.

    Only explicit words count (a meter like ``3/4``, a tune type, a meter class, a tempo or mode
    word, an ensemble or instrument name); everything else is left for the embedding to decide.
    """
    if not text:
        return {}
    t = text.lower()
    out: dict[str, str] = {}
    m = re.search(r"\b(\d{1,2}/\d{1,2})\b", t)
    if m and m.group(1) in T.METERS:
        out["meter"] = m.group(1)
    tune = _find(t, {v: v for v in T.TUNE_TYPES if v != "other"})
    if tune:
        out["tune_type"] = tune
        if "meter" not in out and tune in _METER_WORDS:
            out["meter"] = _METER_WORDS[tune]
    if "meter" not in out and (cls := _find(t, _METER_CLASS_WORDS)) is not None:
        out["meter"] = cls
    for name, words in (("tempo_class", _TEMPO_WORDS), ("mode", _MODE_WORDS)):
        if (v := _find(t, words)) is not None:
            out[name] = v
    ens = (_family_ensemble(t) or _find(t, {e: e for e in T.ENSEMBLES if e != "unknown"})
           or _find(t, _ENSEMBLE_WORDS))
    if ens:
        out["ensemble"] = ens
    return out


def forced_attributes(attributes: Mapping[str, str], text: str | None) -> dict[str, str]:
    """Header values to force: the query's words, overridden by the request's explicit attributes.

    Request keys are mapped onto the vocabulary (``tempo`` -> ``tempo_class``, ``instrument`` ->
    ``ensemble``, a modal name -> its major/minor family); values the vocabulary does not know
    are dropped rather than forced to ``other`` (the embedding then decides).
    """
    out = attributes_from_text(text)
    aliases = {"tempo": "tempo_class", "instrument": "ensemble", "type": "tune_type"}
    for key, value in attributes.items():
        name = aliases.get(key, key)
        if name not in T.ATTRIBUTES:
            continue
        v = value.strip().lower()
        if name == "mode":
            v = _MODE_WORDS.get(v, v)
        elif name == "ensemble" and v not in T.ENSEMBLES:
            v = _find(v, _ENSEMBLE_WORDS) or v
        elif name == "tempo_class":
            v = _TEMPO_WORDS.get(v, v)
        if v in T.ATTRIBUTES[name] and v not in ("other", "unknown"):
            out[name] = v
    return out


@dataclass(frozen=True)
class Performance:
    """How one candidate is played: everything the renderer needs beyond the notes."""

    ensemble: str
    bpm: float  # heard beats per minute
    transpose: int  # semitones from the normalised key (C major / A minor)
    soundfont: str = DEFAULT_SOUNDFONT
    seed: int = 0


def ensemble_for(ens_name: str) -> Ensemble:
    """The ensemble a generated melody is played by: its polyphonic form when it has one."""
    return ensemble(ens_name, ens_name in POLY_ENSEMBLES and ens_name not in MELODY_ENSEMBLES)


def instrumentation(ens_name: str, n_voices: int, tonic_pc: int) -> dict[str, object]:
    """How a score's voices are played, JSON-ready (the MIDI export's instruments).

    Returns:
        ``{"ensemble", "instruments", "programs": [[GM program, ...] per voice],
        "octaves": [[shift, ...] per voice], "drone": GM program or None, "drone_pitch"}``.
    """
    ens = ensemble_for(ens_name)
    progs, octs = programs_for(ens, n_voices)
    return {"ensemble": ens.name, "instruments": list(ens.instruments),
            "programs": [list(p) for p in progs], "octaves": [list(o) for o in octs],
            "drone": ens.drone, "drone_pitch": 48 + tonic_pc % 12}


def arrange(ev: Events, ens_name: str, minor: bool) -> tuple[Events, Ensemble]:
    """The melody (key-normalised) arranged for ``ens_name``: (events, the Ensemble).

    Polyphonic ensembles get "block" chords plus a bass an octave under the chords' root part
    (:func:`accompany`, then the chord voice's lowest notes doubled down); melody ensembles
    play the line alone (with their drone, if any).
    """
    ens = ensemble_for(ens_name)
    if not ens.polyphonic:
        return ev, ens
    key = (9, True) if minor else (0, False)
    return with_bass(accompany(ev, "block", key=key), chord_voice=ev.n_voices), ens


def with_bass(ev: Events, chord_voice: int) -> Events:
    """``ev`` plus a bass part: each chord's lowest note an octave down, in a new voice."""
    sel = np.flatnonzero(ev.voice == chord_voice)
    if not len(sel):
        return ev
    on = np.round(ev.onset[sel], 6)
    order = sel[np.lexsort((ev.pitch[sel], on))]
    first = np.append(True, np.diff(np.round(ev.onset[order], 6)) > 0)
    roots = order[first]
    onset = np.concatenate([ev.onset, ev.onset[roots]])
    idx = np.argsort(onset, kind="stable")
    cat = lambda a, b: np.concatenate([a, b])[idx]  # noqa: E731 - five arrays, one rule
    return Events(onset=onset[idx], dur=cat(ev.dur, ev.dur[roots]),
                  pitch=cat(ev.pitch, (ev.pitch[roots] - 12).astype(np.int16)),
                  voice=cat(ev.voice, np.full(len(roots), ev.n_voices, np.int16)),
                  strength=cat(ev.strength, ev.strength[roots]), length_ql=ev.length_ql,
                  n_voices=ev.n_voices + 1, bar_ql=ev.bar_ql, beat_ql=ev.beat_ql)


def qbpm_for(ev: Events, meter: str, bpm: float) -> float:
    """Quarter notes per minute that make the melody's heard beat go at ``bpm``."""
    compound = meter in _COMPOUND
    return float(np.clip(bpm * ev.heard_beat_ql(compound), 20.0, 400.0))


def play(ev: Events, meter: str, minor: bool, perf: Performance, duration_s: float,
         sample_rate: int) -> tuple[np.ndarray, float, Events, int]:
    """Render a melody and say how it was played.

    Returns:
        (float32 mono audio, quarter notes per minute, the arranged events, the transposition
        actually played).
    """
    arranged, ens = arrange(ev, perf.ensemble, minor)
    qbpm = qbpm_for(ev, meter, perf.bpm)
    progs, octs = programs_for(ens, arranged.n_voices)
    tonic = (9 if minor else 0) + perf.transpose
    # start on the first note: a sampled melody may open with rests, even empty bars
    start = float(ev.onset.min())
    spec = RenderSpec(programs=progs, octave_shift=octs, qbpm=qbpm, start_ql=start,
                      duration_s=duration_s, transpose=perf.transpose, velocity=88,
                      soundfont=perf.soundfont, drone=ens.drone, drone_pitch=48 + tonic % 12,
                      seed=perf.seed)
    try:
        return render(arranged, spec, sample_rate), qbpm, arranged, spec.transpose
    except GenerationError:
        # A preset can lack samples for a register (TimGM6mb's whistle above ~A6 is silent):
        # play it an octave lower rather than lose the candidate.
        low = replace(spec, transpose=spec.transpose - 12)
        return render(arranged, low, sample_rate), qbpm, arranged, low.transpose


def score_json(ev: Events, tokens: list[int], meter: str, qbpm: float, transpose: int,
               parts: dict[str, object] | None = None) -> dict[str, object]:
    """The candidate's score, JSON-ready: the played note events (transposed) and the tokens.

    ``parts`` (:func:`instrumentation`) adds who plays each voice, so an export (MIDI,
    MusicXML) names the instruments heard; a score without it reads as piano.
    """
    out: dict[str, object] = {
        "format": "tunescope-events/1", "meter": meter, "qbpm": round(qbpm, 3),
        "transpose": transpose, "onset_ql": [round(float(x), 4) for x in ev.onset],
        "dur_ql": [round(float(x), 4) for x in ev.dur],
        "pitch": [int(p) + transpose for p in ev.pitch], "voice": [int(v) for v in ev.voice],
        "length_ql": ev.length_ql, "tokens": [int(t) for t in tokens]}
    if parts:
        out.update(parts)
    return out


def score_mode(score: Mapping[str, object]) -> str:
    """Major or minor as the notes of the melody (voice 0 of a :func:`score_json`) say.

    Krumhansl-Kessler key finding over the melody's durations: what a listener, or the
    evaluation, hears, which need not be what the header token asked for (a melody sampled
    under "minor" can still centre on its relative major).
    """
    ev = Events(onset=np.asarray(score["onset_ql"]), dur=np.asarray(score["dur_ql"]),
                pitch=np.asarray(score["pitch"], np.int16), voice=np.asarray(score["voice"], np.int16),
                strength=np.zeros(len(score["pitch"]), np.float32), length_ql=float(score["length_ql"]),
                n_voices=1, bar_ql=4.0, beat_ql=1.0)
    return "minor" if estimate_key(ev, 0)[1] else "major"
