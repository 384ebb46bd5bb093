"""A generated track's score as a file: Standard MIDI (pretty_midi) or MusicXML (music21).

The input is the ``score_json`` dict a symbolic candidate carries (``Track.extra["score"]`` once
stored, format ``tunescope-events/1``): parallel lists of onsets and durations in quarter
notes, MIDI pitches as played (transposition applied), voices, the meter and the quarter-note
tempo, and, when the generator recorded them, the GM programs and octave shifts that played
each voice (:func:`generation.generators.symbolic_render.instrumentation`). So the MIDI file
sounds like the rendered audio (same notes, tempo and instruments, the drone included) and
the MusicXML reads like a score of it (one part per voice, chords where a voice sounds
several notes at once).

Both ``tunescope generate`` and the API's score download use these two functions.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from generation.errors import GenerationError

FORMAT = "tunescope-events/1"


def _notes(score: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(onset_ql, dur_ql, pitch, voice)`` arrays, checked.

    Raises:
        GenerationError: not a ``tunescope-events/1`` score, or lists of unequal length.
    """
    if not isinstance(score, Mapping) or score.get("format") != FORMAT:
        got = score.get("format") if isinstance(score, Mapping) else type(score).__name__
        raise GenerationError(f"not a {FORMAT} score (format {got!r})")
    try:
        onset = np.asarray(score["onset_ql"], np.float64)
        dur = np.asarray(score["dur_ql"], np.float64)
        pitch = np.asarray(score["pitch"], np.int64)
        voice = np.asarray(score["voice"], np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise GenerationError(f"malformed {FORMAT} score: {e}") from e
    if not (len(onset) == len(dur) == len(pitch) == len(voice)) or onset.ndim != 1:
        raise GenerationError(f"malformed {FORMAT} score: onset/dur/pitch/voice lengths differ")
    return onset, dur, pitch, voice


def _meter(score: Mapping[str, Any]) -> tuple[int, int]:
    try:
        num, den = (int(x) for x in str(score.get("meter") or "4/4").split("/"))
    except ValueError as e:
        raise GenerationError(f"malformed meter {score.get('meter')!r}") from e
    return num, den


def _voice_parts(score: Mapping[str, Any], v: int) -> list[tuple[int, int]]:
    """``[(GM program, octave shift)]`` playing voice ``v`` (piano when unrecorded)."""
    programs = score.get("programs") or []
    octaves = score.get("octaves") or []
    if not programs:
        return [(0, 0)]
    progs = programs[min(v, len(programs) - 1)]
    octs = octaves[min(v, len(octaves) - 1)] if octaves else [0] * len(progs)
    return [(int(p), int(o)) for p, o in zip(progs, octs, strict=False)]


def score_to_midi(score: Mapping[str, Any]) -> bytes:
    """The score as a Standard MIDI File (type 1): one track per (voice, instrument).

    Args:
        score: a ``tunescope-events/1`` dict.

    Returns:
        The ``.mid`` file's bytes (tempo and time signature set; velocity 88 as rendered).

    Raises:
        GenerationError: a malformed score.
    """
    import pretty_midi

    onset, dur, pitch, voice = _notes(score)
    qbpm = float(score.get("qbpm") or 120.0)
    sec = 60.0 / qbpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=qbpm)
    num, den = _meter(score)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    start = float(onset.min()) if len(onset) else 0.0  # the audio starts on the first note
    for v in np.unique(voice):
        sel = voice == v
        for k, (program, octave) in enumerate(_voice_parts(score, int(v))):
            inst = pretty_midi.Instrument(program=program, name=f"voice {int(v) + 1}" + (f" ({k + 1})" if k else ""))
            for o, d, p in zip(onset[sel], dur[sel], pitch[sel], strict=True):
                note = int(np.clip(p + 12 * octave, 0, 127))
                t0 = (o - start) * sec
                inst.notes.append(pretty_midi.Note(88, note, t0, t0 + max(d, 1e-3) * sec))
            pm.instruments.append(inst)
    if score.get("drone") is not None and len(onset):
        drone = pretty_midi.Instrument(program=int(score["drone"]), name="drone")
        end = float((onset + dur).max() - start) * sec
        root = int(score.get("drone_pitch", 48))
        drone.notes += [pretty_midi.Note(60, root, 0.0, end), pretty_midi.Note(60, root + 7, 0.0, end)]
        pm.instruments.append(drone)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def score_to_musicxml(score: Mapping[str, Any], title: str | None = None) -> bytes:
    """The score as MusicXML: one part per voice, notes on a 1/12-quarter grid, chords merged.

    Args:
        score: a ``tunescope-events/1`` dict.
        title: the work title written into the file.

    Returns:
        The ``.musicxml`` file's bytes (UTF-8 XML).

    Raises:
        GenerationError: a malformed score.
    """
    from music21 import chord, instrument, metadata, meter, note, stream, tempo
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    onset, dur, pitch, voice = _notes(score)
    num, den = _meter(score)
    start = float(onset.min()) if len(onset) else 0.0
    top = stream.Score()
    if title:
        top.metadata = metadata.Metadata(title=title)
    for v in np.unique(voice):
        part = stream.Part()
        program, _ = _voice_parts(score, int(v))[0]
        inst = instrument.instrumentFromMidiProgram(program)
        part.insert(0, inst)
        part.insert(0, meter.TimeSignature(f"{num}/{den}"))
        if v == voice.min():
            part.insert(0, tempo.MetronomeMark(number=round(float(score.get("qbpm") or 120.0))))
        sel = voice == v
        groups: dict[float, list[tuple[float, int]]] = {}
        for o, d, p in zip(onset[sel], dur[sel], pitch[sel], strict=True):
            groups.setdefault(_grid(o - start), []).append((_grid(max(d, 1 / 12)), int(p)))
        for o, items in sorted(groups.items()):
            d = min(x[0] for x in items)  # a chord's notes share one duration
            pitches = sorted({p for _, p in items})
            el = note.Note(pitches[0]) if len(pitches) == 1 else chord.Chord(pitches)
            el.quarterLength = d
            part.insert(o, el)
        top.insert(0, part)
    try:
        return GeneralObjectExporter(top.makeNotation()).parse()
    except Exception as e:  # music21 raises many types on notation it cannot spell
        raise GenerationError(f"cannot write MusicXML for this score: {type(e).__name__}: {e}") from e


def _grid(ql: float) -> float:
    """Quarter notes rounded to the token grid (1/12), so music21 can spell every value."""
    return round(float(ql) * 12) / 12
