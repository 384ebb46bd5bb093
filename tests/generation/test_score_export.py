"""Score downloads: a candidate's score_json as MIDI (same notes, tempo, instruments) and MusicXML."""

from __future__ import annotations

import io

import numpy as np
import pytest

from generation.errors import GenerationError
from generation.symbolic.score_export import score_to_midi, score_to_musicxml

# A bar of 3/4 melody (voice 0, fiddle) over a block chord (voice 1, two cellos an octave apart),
# starting on beat 2 as a sampled melody may; a tonic-and-fifth drone.
SCORE = {
    "format": "tunescope-events/1", "meter": "3/4", "qbpm": 120.0, "transpose": 2,
    "onset_ql": [1.0, 2.0, 2.5, 3.0, 3.0, 3.0], "dur_ql": [1.0, 0.5, 0.5, 3.0, 3.0, 3.0],
    "pitch": [74, 76, 78, 79, 50, 54], "voice": [0, 0, 0, 0, 1, 1], "length_ql": 6.0, "tokens": [],
    "programs": [[40], [42, 42]], "octaves": [[0], [0, -1]], "drone": 109, "drone_pitch": 50,
}


def test_midi_plays_the_score_notes_at_its_tempo_with_its_instruments() -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(score_to_midi(SCORE)))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120.0)
    ts = pm.time_signature_changes[0]
    assert (ts.numerator, ts.denominator) == (3, 4)
    by_prog = {}
    for inst in pm.instruments:
        by_prog.setdefault(inst.program, []).append(sorted(n.pitch for n in inst.notes))
    assert by_prog[40] == [[74, 76, 78, 79]]
    assert sorted(by_prog[42]) == [[38, 42], [50, 54]]  # the second cello an octave down
    assert by_prog[109] == [[50, 57]]  # the drone: tonic and fifth
    fiddle = next(i for i in pm.instruments if i.program == 40)
    starts = [round(n.start, 3) for n in sorted(fiddle.notes, key=lambda n: n.start)]
    assert starts == [0.0, 0.5, 0.75, 1.0]  # from the first note, 0.5 s per quarter at 120


def test_a_score_without_instruments_reads_as_piano() -> None:
    import pretty_midi

    bare = {k: v for k, v in SCORE.items() if k not in ("programs", "octaves", "drone")}
    pm = pretty_midi.PrettyMIDI(io.BytesIO(score_to_midi(bare)))
    assert {i.program for i in pm.instruments} == {0} and sum(len(i.notes) for i in pm.instruments) == 6


def test_musicxml_has_one_part_per_voice_and_chords_merged() -> None:
    from music21 import converter

    xml = score_to_musicxml(SCORE, title="A test")
    assert xml.lstrip().startswith(b"<?xml") and b"A test" in xml
    parsed = converter.parseData(xml.decode("utf-8"), format="musicxml")
    assert len(parsed.parts) == 2
    def struck(part):  # notes as played: a note tied over the bar line is one note
        return [n for n in part.flatten().notes if n.tie is None or n.tie.type == "start"]

    melody = struck(parsed.parts[0])
    assert [n.pitch.midi for n in melody] == [74, 76, 78, 79]
    assert np.allclose([float(n.offset) for n in melody], [0.0, 1.0, 1.5, 2.0])
    assert melody[-1].tie.type == "start"  # 3 beats from beat 3: tied into the next bar
    chords = struck(parsed.parts[1])
    assert len(chords) == 1 and sorted(p.midi for p in chords[0].pitches) == [50, 54]
    assert parsed.parts[0].flatten().getTimeSignatures()[0].ratioString == "3/4"


@pytest.mark.parametrize("bad", [None, {"format": "other"}, {**SCORE, "pitch": [60]}, {**SCORE, "meter": "x"}])
def test_malformed_scores_are_refused(bad: object) -> None:
    with pytest.raises(GenerationError):
        score_to_midi(bad)  # type: ignore[arg-type]
