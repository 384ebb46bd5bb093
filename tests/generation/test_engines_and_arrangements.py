"""The FluidSynth engine, arrangements and performance variation over note events."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from generation.errors import GenerationError
from generation.symbolic import arrange, fluid, perform
from generation.symbolic.render import RenderSpec, load_score, render, score_to_events
from tests.generation.test_render_and_catalog import JIG

HORNPIPE = """X:2
T:Test hornpipe
M:4/4
L:1/8
K:G
GABc dBGB|cABG FDEF|GABc dBGB|cAFD G2G2|
"""
needs_fluid = pytest.mark.skipif(not fluid.fluid_available(), reason=fluid.INSTALL_HINT)


@pytest.fixture(scope="module")
def jig():
    return score_to_events(load_score(Path("jig.abc"), JIG))


@pytest.fixture(scope="module")
def hornpipe():
    return score_to_events(load_score(Path("hornpipe.abc"), HORNPIPE))


def _spec(ev, seconds: float = 3.0, **kw) -> RenderSpec:
    progs = tuple((73,) for _ in range(ev.n_voices))
    return RenderSpec(programs=progs, octave_shift=tuple((0,) for _ in progs), qbpm=150.0,
                      start_ql=0.0, duration_s=seconds, seed=3, **kw)


def test_default_render_is_unchanged(jig) -> None:
    # sha256 of renders made by the code before the FluidSynth engine and vel_offset existed
    cases = [
        (RenderSpec(programs=((110, 73),), octave_shift=((0, 1),), qbpm=150.0, start_ql=3.0,
                    duration_s=5.0, transpose=-2, velocity=80, drone=109, drone_pitch=50, seed=7),
         "26fcb05260e193ba5e57f3be16150ff8fee883356b1ff193bf699a24184adb22"),
        (RenderSpec(programs=((0,),), octave_shift=((0,),), qbpm=120.0, start_ql=0.0, duration_s=3.0, seed=3),
         "426302e2af376e9745c89630fbe8438bc3dded4e82f263b9f98a1683264715ad"),
    ]
    for spec, digest in cases:
        assert hashlib.sha256(render(jig, spec, 16000).tobytes()).hexdigest() == digest
        assert hashlib.sha256(render(jig, spec, 16000, engine="tinysoundfont").tobytes()).hexdigest() == digest


@needs_fluid
def test_fluidsynth_renders_and_differs(jig) -> None:
    spec = _spec(jig, drone=109)
    tsf = render(jig, spec, 22050)
    outs = []
    for fs in (fluid.FluidSettings(), fluid.FluidSettings(reverb=True, chorus=True, interpolation="linear")):
        a = render(jig, spec, 22050, engine="fluidsynth", fluid=fs)
        assert a.dtype == np.float32 and len(a) == 3 * 22050 and np.isfinite(a).all()
        assert 0.05 < np.abs(a).max() <= 0.5 + 1e-6
        assert np.array_equal(a, render(jig, spec, 22050, engine="fluidsynth", fluid=fs))  # deterministic
        assert np.abs(a - tsf).mean() > 1e-3
        outs.append(a)
    assert np.abs(outs[0] - outs[1]).mean() > 1e-3  # the settings matter


def test_missing_fluidsynth_is_a_clear_error(jig, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fluidsynth -> ImportError
    with pytest.raises(GenerationError, match="pyfluidsynth.*libfluidsynth3"):
        render(jig, _spec(jig), 16000, engine="fluidsynth")
    assert not fluid.fluid_available()
    with pytest.raises(GenerationError, match="engine"):
        render(jig, _spec(jig), 16000, engine="timidity")


def _melody(ev):
    m = ev.voice == 0
    return ev.onset[m], ev.dur[m], ev.pitch[m]


def test_key_and_chords(jig) -> None:
    assert arrange.estimate_key(jig) == (2, False)  # D major
    starts, chords = arrange.bar_chords(jig)
    assert len(starts) == 8 and starts[0] == 0.0
    # dfa -> D, gbg -> G, ede fed / cAA -> A, last bar D
    assert [int(c[0]) for c in chords] == [2, 7, 9, 9, 2, 7, 9, 2]


@pytest.mark.parametrize("style", sorted(arrange.ACCOMPANIMENT_PROGRAMS))
def test_accompaniment_keeps_melody_and_adds_its_part(jig, style) -> None:
    a = arrange.accompany(jig, style, seed=1)
    for x, y in zip(_melody(a), _melody(jig), strict=True):
        assert np.array_equal(x, y)
    assert np.all(np.diff(a.onset) >= 0) and a.length_ql == jig.length_ql
    acc = a.voice == 1
    assert acc.sum() > 0 and a.n_voices == (3 if style == "oompah" else 2)
    lo, hi = arrange.CHORD_RANGE
    assert a.pitch[acc].min() >= lo - 12 and a.pitch[acc].max() <= hi
    assert a.onset[acc].min() >= 0 and (a.onset + a.dur).max() <= a.length_ql + 1e-9
    chord_pcs = {2, 6, 9, 7, 11, 1, 4}  # D, G and A triads
    assert set((a.pitch[acc] % 12).tolist()) <= chord_pcs
    ons = np.round(a.onset[acc], 6)
    if style == "block":
        assert len(np.unique(ons)) == 8 and np.all(np.bincount(np.unique(ons, return_inverse=True)[1]) == 3)
    if style == "alberti":
        assert np.allclose(np.diff(np.unique(ons)), 0.5)  # running eighths
    if style == "oompah":
        bass = a.voice == 2
        lo_b, hi_b = arrange.BASS_RANGE
        assert lo_b <= a.pitch[bass].min() and a.pitch[bass].max() <= hi_b
        assert np.allclose(np.mod(a.onset[bass], jig.beat_ql), 0)  # bass on the beats
        assert not np.any(np.isclose(np.mod(a.onset[acc], jig.beat_ql), 0))  # chords off them
    if style == "strum":
        first = a.onset[acc][:3]
        assert np.all(np.diff(first) > 0)  # the strings are struck one after another
    if style == "drone":
        assert set((a.pitch[acc] % 12).tolist()) == {2, 9}
    render(a, _spec(a), 16000)  # plays


def test_strum_is_deterministic_per_seed(jig) -> None:
    a, b, c = (arrange.accompany(jig, "strum", seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.onset, b.onset) and not np.array_equal(a.onset, c.onset)


def test_keyboard_reduction_and_octaves(jig) -> None:
    doubled = arrange.double_octaves(jig, shift=-12, new_voice=True)
    assert doubled.n_voices == 2 and len(doubled.onset) == 2 * len(jig.onset)
    assert np.array_equal(np.sort(doubled.pitch[doubled.voice == 1]), np.sort(jig.pitch - 12))
    same = arrange.double_octaves(jig, shift=12)
    assert same.n_voices == 1 and len(same.onset) == 2 * len(jig.onset)
    k = arrange.keyboard_reduction(arrange.accompany(jig, "block"))
    assert k.n_voices == 1 and np.all(k.voice == 0)
    # a unison between two parts is struck once
    uni = arrange.double_octaves(jig, shift=12, new_voice=True)
    uni.pitch[uni.voice == 1] -= 12
    assert len(arrange.keyboard_reduction(uni).onset) == len(jig.onset)
    with pytest.raises(GenerationError):
        arrange.double_octaves(jig, shift=7)


def test_swing_moves_only_off_beats(hornpipe) -> None:
    s = perform.swing(hornpipe, ratio=2.0)
    on_beat = np.isclose(np.mod(hornpipe.onset, 1.0), 0)
    off_eighth = np.isclose(np.mod(hornpipe.onset, 1.0), 0.5)
    assert on_beat.any() and off_eighth.any()
    assert np.array_equal(s.onset[on_beat], hornpipe.onset[on_beat])
    assert np.allclose(s.onset[off_eighth], hornpipe.onset[off_eighth] + 1 / 6)  # to 2/3 of the beat
    assert np.allclose(s.onset + s.dur, np.round(s.onset + s.dur, 6))
    assert np.array_equal(perform.swing(hornpipe, ratio=1.0).onset, hornpipe.onset)


def test_rubato_jitter_and_dynamics_are_deterministic(jig) -> None:
    r1, r2, r3 = (perform.rubato(jig, 0.1, seed=s) for s in (4, 4, 5))
    assert np.array_equal(r1.onset, r2.onset) and not np.array_equal(r1.onset, r3.onset)
    assert np.all(np.diff(r1.onset) >= 0) and np.array_equal(r1.pitch, jig.pitch)
    ioi_ratio = np.diff(r1.onset)[np.diff(jig.onset) > 0] / np.diff(jig.onset)[np.diff(jig.onset) > 0]
    assert 0.75 < ioi_ratio.min() and ioi_ratio.max() < 1.3 and ioi_ratio.std() > 0.01  # smooth swell
    j = perform.jitter(jig, 0.02, seed=1)
    assert np.array_equal(j.onset, perform.jitter(jig, 0.02, seed=1).onset)
    assert 0 < np.abs(np.sort(j.onset) - jig.onset).max() < 0.2
    v = perform.velocity_curve(jig, "crescendo", depth=20)
    assert v.vel_offset[0] < -15 and v.vel_offset[-1] > 15
    def start_over_end(audio):
        return np.sqrt(np.mean(audio[:32000] ** 2) / np.mean(audio[-40000:-8000] ** 2))

    plain = render(jig, _spec(jig, 9.0), 16000)
    cresc = render(perform.velocity_curve(jig, "crescendo", depth=30), _spec(jig, 9.0), 16000)
    assert start_over_end(cresc) < 0.7 * start_over_end(plain)  # the crescendo is heard
