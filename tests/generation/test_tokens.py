"""Melody tokens: key normalisation, the encode/decode round trip, tolerance of bad sequences."""

from __future__ import annotations

import numpy as np
import pytest

from generation.errors import GenerationError
from generation.generators.symbolic_render import attributes_from_text, forced_attributes
from generation.symbolic import tokens as T
from generation.symbolic.render import Events


def _events(onsets: list[float], durs: list[float], pitches: list[int], bar: float, beat: float,
            downbeat: float = 0.0) -> Events:
    on = np.asarray(onsets, float)
    strength = np.where(np.isclose(np.mod(on - downbeat, bar), 0), 1.0, 0.5).astype(np.float32)
    return Events(onset=on, dur=np.asarray(durs, float), pitch=np.asarray(pitches, np.int16),
                  voice=np.zeros(len(on), np.int16), strength=strength,
                  length_ql=float(on[-1] + durs[-1]), n_voices=1, bar_ql=bar, beat_ql=beat)


def test_normalising_shift_moves_the_tonic_to_c_or_a() -> None:
    assert T.normalising_shift(2, minor=True) == -5  # D minor -> A minor, down a fourth
    assert T.normalising_shift(7, minor=False) == 5  # G major -> C major, up a fourth
    assert T.normalising_shift(0, minor=False) == 0
    for tonic in range(12):
        for minor in (False, True):
            s = T.normalising_shift(tonic, minor)
            assert -6 <= s <= 5 and (tonic + s) % 12 == (9 if minor else 0)


def test_round_trip_of_an_on_grid_melody_with_a_pickup_and_triplets() -> None:
    # 3/4, an eighth-note pickup, then a bar with triplet eighths, in D minor
    on = [2.5, 3.0, 3 + 1 / 3, 3 + 2 / 3, 4.0, 5.0, 6.0]
    du = [0.5, 1 / 3, 1 / 3, 1 / 3, 1.0, 1.0, 3.0]
    pi = [62, 65, 64, 62, 69, 67, 62]
    ev = _events(on, du, pi, bar=3.0, beat=1.0, downbeat=3.0)
    shift = T.normalising_shift(2, minor=True)
    toks = T.encode(ev, "3/4", {"mode": "minor", "tune_type": "waltz"}, shift)
    assert [T.VOCAB[t] for t in toks[:T.HEADER_LEN]] == [
        "BOS", "meter=3/4", "mode=minor", "tempo_class=unknown", "tune_type=waltz", "ensemble=unknown"]
    mel = T.decode(toks)
    assert mel.attributes["meter"] == "3/4" and mel.attributes["tune_type"] == "waltz"
    # bar 0 is the pickup bar, starting one bar before the first downbeat (at 0)
    np.testing.assert_allclose(mel.events.onset, np.asarray(on) - 0.0)
    np.testing.assert_allclose(mel.events.dur, du)
    assert mel.events.pitch.tolist() == [p + shift for p in pi]
    assert T.encode(mel.events, "3/4", mel.attributes) == toks  # and back to the same tokens


def test_encode_is_monophonic_keeps_the_top_note_and_folds_the_range() -> None:
    ev = Events(onset=np.array([0.0, 0.0, 1.0, 2.0]), dur=np.array([1.0, 1.0, 1.0, 2.0]),
                pitch=np.array([60, 67, 30, 110], np.int16), voice=np.zeros(4, np.int16),
                strength=np.array([1, 1, 0.5, 0.5], np.float32), length_ql=4.0, n_voices=1,
                bar_ql=4.0, beat_ql=1.0)
    mel = T.decode(T.encode(ev, "4/4", {}))
    assert mel.events.onset.tolist() == [0.0, 1.0, 2.0]
    assert mel.events.pitch[0] == 67  # the highest of the chord
    assert all(T.PITCH_LO <= p <= T.PITCH_HI for p in mel.events.pitch)
    assert mel.events.pitch[1] % 12 == 30 % 12 and mel.events.pitch[2] % 12 == 110 % 12


def test_durations_never_overlap_the_next_note() -> None:
    # a 5-step note is nearest to 6 steps on the log scale, but the next onset is 5 steps on
    ev = _events([0.0, 5 / 12, 1.0], [5 / 12, 7 / 12, 1.0], [60, 62, 64], bar=4.0, beat=1.0)
    mel = T.decode(T.encode(ev, "4/4", {}))
    ends = mel.events.onset + mel.events.dur
    assert (ends[:-1] <= mel.events.onset[1:] + 1e-9).all()


def test_max_tokens_keeps_only_complete_bars() -> None:
    ev = _events([float(i) for i in range(32)], [1.0] * 32, [60 + i % 7 for i in range(32)], 4.0, 1.0)
    toks = T.encode(ev, "4/4", {}, max_tokens=60)
    assert len(toks) <= 60 and T.EOS not in toks
    bars = [i for i, t in enumerate(toks) if t == T.BAR]
    assert len(toks) - bars[-1] - 1 == 4 * 3  # the last bar is whole: four notes of 3 tokens


def test_decode_skips_malformed_groups_and_positions_past_the_bar() -> None:
    ids = T.TOKEN_ID
    toks = [T.BOS, ids["meter=2/4"], T.BAR, ids["DUR:12"], ids["POS:0"], ids["PITCH:60"], ids["DUR:12"],
            ids["POS:30"], ids["PITCH:62"], ids["DUR:6"],  # position 30 > a 2/4 bar (24 steps)
            ids["PITCH:64"], ids["POS:12"], ids["PITCH:65"], ids["DUR:12"], T.EOS, ids["POS:0"]]
    mel = T.decode(toks)
    assert mel.events.onset.tolist() == [0.0, 1.0] and mel.events.pitch.tolist() == [60, 65]
    assert mel.events.bar_ql == 2.0
    with pytest.raises(GenerationError, match="no complete note"):
        T.decode([T.BOS, T.BAR, T.EOS])


def test_attribute_tokens_and_their_fallbacks() -> None:
    assert T.VOCAB[T.attribute_token("tune_type", "mazurka")] == "tune_type=other"
    assert T.VOCAB[T.attribute_token("ensemble", None)] == "ensemble=unknown"
    with pytest.raises(GenerationError, match="meter must be one of"):
        T.attribute_token("meter", "7/8")
    with pytest.raises(GenerationError, match="unknown attribute"):
        T.attribute_token("colour", "blue")
    assert len(T.VOCAB) < 300 and len(set(T.VOCAB)) == len(T.VOCAB)


def test_words_in_a_query_become_forced_attributes_and_explicit_ones_win() -> None:
    assert attributes_from_text("A slow waltz for accordion in a minor key") == {
        "tune_type": "waltz", "meter": "3/4", "tempo_class": "slow", "mode": "minor", "ensemble": "accordion"}
    assert attributes_from_text("lively jig on the fiddle")["ensemble"] == "solo fiddle"
    assert attributes_from_text("something") == {}
    # instruments named together make their ensemble; one alone stays a solo
    assert attributes_from_text("chamber music for two violins, viola and cello")["ensemble"] == "string quartet"
    assert attributes_from_text("a piece for flute, oboe and clarinet")["ensemble"] == "woodwind quartet"
    assert attributes_from_text("trumpets and trombones")["ensemble"] == "brass quartet"
    assert attributes_from_text("a solo cello suite")["ensemble"] == "solo cello"
    assert attributes_from_text("a tune on the french horn")["ensemble"] == "french horn"
    assert attributes_from_text("a piece in a triple meter")["meter"] == "3/4"
    assert attributes_from_text("a slip jig, compound meter")["meter"] == "9/8"  # the tune type is more specific
    f = forced_attributes({"meter": "6/8", "mode": "dorian", "instrument": "harp", "colour": "blue"},
                          "a slow waltz")
    assert f == {"tune_type": "waltz", "meter": "6/8", "tempo_class": "slow", "mode": "minor", "ensemble": "harp"}
