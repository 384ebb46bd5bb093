"""Rendering scores through the soundfont, and building a tiny demo catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from generation.demo.catalog import build_catalog
from generation.errors import GenerationError
from generation.symbolic.corpus import list_sources
from generation.symbolic.render import RenderSpec, load_score, render, score_to_events, soundfont_paths

JIG = """X:1
T:Test jig
M:6/8
L:1/8
K:D
dfa afd|gbg faf|ede fed|cAA A2 z|dfa afd|gbg faf|ede cAc|d3 d2 z|
"""


@pytest.fixture(scope="module")
def jig_events():
    return score_to_events(load_score(Path("test.abc"), JIG))


def _dominant_hz(audio: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sr)[spec.argmax()])


def test_events_and_heard_beat(jig_events) -> None:
    ev = jig_events
    assert ev.n_voices == 1 and len(ev.onset) == 42
    assert ev.bar_ql == 3.0 and ev.beat_ql == 1.5
    # eighth notes in 6/8: the heard beat is three of them (a dotted quarter)
    assert ev.heard_beat_ql(compound=True) == pytest.approx(1.5)
    assert np.all(np.diff(ev.onset) >= 0)


def test_render_length_level_and_pitch(jig_events) -> None:
    spec = RenderSpec(programs=((73,),), octave_shift=((0,),), qbpm=120.0, start_ql=0.0,
                      duration_s=4.0, soundfont="TimGM6mb", seed=1)
    audio = render(jig_events, spec, 16000)
    assert audio.dtype == np.float32 and len(audio) == 64000
    assert 0.05 < np.abs(audio).max() <= 0.5 + 1e-6
    # same spec, same seed -> identical audio; transposition moves the spectrum up
    assert np.array_equal(audio, render(jig_events, spec, 16000))
    up = render(jig_events, RenderSpec(**{**spec.__dict__, "transpose": 12}), 16000)
    assert _dominant_hz(up, 16000) > 1.5 * _dominant_hz(audio, 16000)


def test_render_loops_a_short_piece(jig_events) -> None:
    # 8 bars of 6/8 at 120 quarter bpm last 12 s; ask for 30 s: the tune is played again
    spec = RenderSpec(programs=((0,),), octave_shift=((0,),), qbpm=120.0, start_ql=0.0,
                      duration_s=30.0, soundfont="TimGM6mb")
    audio = render(jig_events, spec, 8000)
    tail = audio[int(20 * 8000):int(28 * 8000)]
    assert np.sqrt(np.mean(tail ** 2)) > 0.01


def test_unknown_soundfont_is_a_clear_error(jig_events) -> None:
    spec = RenderSpec(programs=((0,),), octave_shift=((0,),), qbpm=100, start_ql=0, duration_s=1,
                      soundfont="NoSuchFont")
    with pytest.raises(GenerationError, match="NoSuchFont.*not installed"):
        render(jig_events, spec, 8000)


def test_timgm6mb_always_available() -> None:
    assert Path(soundfont_paths()["TimGM6mb"]).is_file()


def test_build_tiny_catalog(tmp_path: Path) -> None:
    sources = [s for s in list_sources() if s.family in ("irish", "chorale")]
    summary = build_catalog(tmp_path / "a", size=4, seed=5, renders=2, sample_rate=16000,
                            workers=1, soundfonts=["TimGM6mb"], sources=sources, paraphrases=True)
    assert summary["pieces"] == 4 and summary["tracks"] == 8
    rows = [json.loads(line) for line in (tmp_path / "a" / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    for r in rows:
        info = sf.info(str(tmp_path / "a" / r["path"]))
        assert info.samplerate == 16000 and 19.9 < info.duration < 30.1
        assert r["collection"] and r["title"] and r["split"] in ("train", "validation", "test")
        assert len(r["captions"]) >= 3 and len(set(r["captions"])) == len(r["captions"])
        assert r["tempo_bucket"] in ("slow", "moderate", "fast") and r["mode_family"] in ("major", "minor")
        assert r["instruments"] and r["ensemble"] and r["paraphrases"]
    by_piece: dict[str, set[str]] = {}
    for r in rows:
        by_piece.setdefault(r["piece_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_piece.values())  # split by piece, never by excerpt
    # deterministic per seed
    build_catalog(tmp_path / "b", size=4, seed=5, renders=2, sample_rate=16000, workers=1,
                  soundfonts=["TimGM6mb"], sources=sources, paraphrases=True)
    assert (tmp_path / "a" / "metadata.jsonl").read_text() == (tmp_path / "b" / "metadata.jsonl").read_text()


def test_build_rejects_absurd_parameters(tmp_path: Path) -> None:
    with pytest.raises(GenerationError, match="renders"):
        build_catalog(tmp_path, size=2, renders=100)
    with pytest.raises(GenerationError, match="sample rate"):
        build_catalog(tmp_path, size=2, sample_rate=100)
