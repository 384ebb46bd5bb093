"""Encoder v2's render variety: what each mode changes, and that no mode leaks into v1 renders."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from generation.demo.catalog import RenderJob, plan_catalog, render_job
from generation.demo.variety import apply_variety, extend_programs, plan_variety, prepare
from generation.symbolic import fluid
from generation.symbolic.ensembles import MELODY_ENSEMBLES, POLY_ENSEMBLES, programs_for
from generation.symbolic.render import (
    HELDOUT_SOUNDFONT,
    RenderSpec,
    load_score,
    render,
    score_to_events,
    soundfont_paths,
)
from tests.generation.test_render_and_catalog import JIG

needs_fluid = pytest.mark.skipif(not fluid.fluid_available(), reason=fluid.INSTALL_HINT)


@pytest.fixture(scope="module")
def jig():
    return score_to_events(load_score(Path("jig.abc"), JIG))


def test_train_mode_draws_every_kind_of_variation() -> None:
    rng = random.Random(0)
    mel = [plan_variety(rng, "train", polyphonic=False, tune_type="hornpipe") for _ in range(400)]
    poly = [plan_variety(rng, "train", polyphonic=True, tune_type=None) for _ in range(200)]
    engines = Counter(v.engine for v in mel)
    assert 0.3 < engines["fluidsynth"] / len(mel) < 0.5
    arrangements = Counter(v.arrangement for v in mel)
    assert {"as written", "block", "alberti", "oompah", "strum", "drone", "octaves"} <= set(arrangements)
    assert "keyboard reduction" not in arrangements  # a melody is accompanied, not reduced
    assert 0.25 < Counter(v.arrangement for v in poly)["keyboard reduction"] / len(poly) < 0.45
    accents = np.array([v.accent for v in mel])
    assert (accents == 0).mean() > 0.15 and (accents == 16).mean() > 0.25  # deadpan and ours both present
    swung = np.mean(["swing" in v.performance for v in mel])
    assert 0.6 < swung < 0.8  # hornpipes are swung more often than not
    assert not any("swing" in plan_variety(rng, "train", polyphonic=False, tune_type="jig").performance
                   for _ in range(100))


def test_heldout_mode_is_one_fixed_combination() -> None:
    for poly in (False, True):
        v = plan_variety(random.Random(3), "heldout", polyphonic=poly, tune_type="jig")
        assert (v.engine, v.accent, v.performance, v.keyboard) == ("fluidsynth", 0.0, (), "solo piano")
        assert v.arrangement == ("keyboard reduction" if poly else "as written")
    with pytest.raises(ValueError):
        plan_variety(random.Random(0), "other", polyphonic=False, tune_type=None)


def test_accompaniment_adds_voices_with_their_own_programs(jig) -> None:
    v = plan_variety(random.Random(0), "train", polyphonic=False, tune_type=None)
    v = type(v)(arrangement="oompah", seed=5)
    played = apply_variety(jig, v)
    assert played.n_voices == jig.n_voices + 2  # chords and a bass
    progs, octs = programs_for(MELODY_ENSEMBLES["solo fiddle"], jig.n_voices)
    progs2, octs2 = extend_programs(progs, octs, v, played.n_voices)
    assert progs2[:len(progs)] == progs and progs2[len(progs):] == ((21,), (32,))
    assert len(octs2) == len(progs2)


def test_prepare_without_mode_is_v1(jig) -> None:
    ens = MELODY_ENSEMBLES["solo fiddle"]
    played, ens2, progs, octs, v = prepare(None, "k", jig, ens, "jig")
    assert played is jig and ens2 is ens and v is None
    assert (progs, octs) == programs_for(ens, jig.n_voices)


def test_heldout_prepare_plays_a_melody_on_the_piano(jig) -> None:
    played, ens, progs, _, v = prepare("heldout", "k", jig, MELODY_ENSEMBLES["solo fiddle"], "jig")
    assert ens.name == "solo piano" and progs == ((0,),) and v.accent == 0.0
    assert np.array_equal(played.onset, jig.onset)  # deadpan: no performance moves a note


def test_keyboard_reduction_plays_polyphony_on_one_keyboard() -> None:
    plan = [s for s in plan_catalog(60, 0, splits=("train",)) if s.family == "chorale"][:1]
    if not plan:
        pytest.skip("no chorale in the first 60 planned pieces")
    job = RenderJob(0, plan[0], 6, 0, 16000, "", ("TimGM6mb",), write_audio=False, max_duration_s=4.0,
                    variety="train")
    res = render_job(job)
    assert res.error is None and len(res.audio) == 6
    for row in res.rows:
        v = row["variety"]
        if v["arrangement"] == "keyboard reduction":
            assert row["ensemble"] in POLY_ENSEMBLES and row["instrument_family"] in ("keyboard", "organ")


def test_variety_rows_record_what_was_done_and_v1_rows_do_not() -> None:
    src = plan_catalog(20, 0, splits=("train",))[0]
    base = dict(index=0, source=src, renders=2, seed=0, sample_rate=16000, out_dir="", soundfonts=("TimGM6mb",),
                write_audio=False, max_duration_s=4.0)
    v1 = render_job(RenderJob(**base))
    again = render_job(RenderJob(**base))
    assert all("variety" not in r for r in v1.rows)
    assert all(np.array_equal(a, b) for a, b in zip(v1.audio, again.audio, strict=True))
    v2 = render_job(RenderJob(**base, variety="train"))
    assert v2.error is None and all({"engine", "arrangement", "accent"} <= set(r["variety"]) for r in v2.rows)


def test_accent_zero_removes_the_downbeat_stress(jig) -> None:
    spec = RenderSpec(programs=((0,),), octave_shift=((0,),), qbpm=150.0, start_ql=0.0, duration_s=3.0, seed=3)
    ours = render(jig, spec, 16000)
    flat = render(jig, RenderSpec(**{**spec.__dict__, "accent": 0.0}), 16000)
    assert ours.shape == flat.shape and not np.array_equal(ours, flat)


@needs_fluid
@pytest.mark.skipif(HELDOUT_SOUNDFONT not in soundfont_paths(), reason="held-out soundfont not installed")
def test_heldout_variant_renders_through_fluidsynth() -> None:
    src = plan_catalog(20, 0, splits=("test",))[0]
    res = render_job(RenderJob(0, src, 1, 0, 16000, "", (HELDOUT_SOUNDFONT,), write_audio=False,
                               max_duration_s=3.0, variety="heldout"))
    assert res.error is None
    row = res.rows[0]
    assert row["variety"]["engine"] == "fluidsynth" and row["soundfont"] == HELDOUT_SOUNDFONT
    assert np.isfinite(res.audio[0]).all() and np.abs(res.audio[0]).max() > 0.01
