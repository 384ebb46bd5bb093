"""Encoder v2's rhythm features: accent-free, tempo-aware, and telling compound from simple metre."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retrieval.encoders.default import ClapMini
from retrieval.encoders.features import FPS, frames_for
from retrieval.encoders.rhythm import (
    MAX_LAG,
    MIN_LAG,
    RATIO_MULTIPLES,
    RHYTHM_V2_DIM,
    RHYTHM_V3_DIM,
    autocorrelation,
    onset_train,
    pitch_change_envelope,
    rhythm_v2_features,
    rhythm_v3_features,
    subdivision_ratios,
)

T = frames_for(10.0)


def _envelope(period_frames: float, accents: list[float], n: int = T) -> torch.Tensor:
    """Onset pulses every ``period_frames`` with a repeating accent pattern (one clip)."""
    x = torch.zeros(n)
    k = 0
    t = 2.0
    while t < n - 1:
        x[int(round(t))] = accents[k % len(accents)]
        t += period_frames
        k += 1
    return x[None]


def test_binary_train_ignores_accents() -> None:
    flat = _envelope(10, [1.0])
    accented = _envelope(10, [1.0, 0.4, 0.4])  # a waltz-like stress on every third onset
    assert torch.equal(onset_train(flat), onset_train(accented))
    a = rhythm_v2_features(flat)[0, : MAX_LAG - MIN_LAG]
    b = rhythm_v2_features(accented)[0, : MAX_LAG - MIN_LAG]
    assert torch.allclose(a, b)  # the onset-train autocorrelation is identical


def _pattern(beat: float, bars: list[list[float]]) -> torch.Tensor:
    """Unaccented onsets: each beat subdivided as the next entry of ``bars`` (fractions of a beat)."""
    x = torch.zeros(T)
    t, k = 2.0, 0
    while t < T - beat:
        for s in bars[k % len(bars)]:
            x[int(round(t + s * beat))] = 1.0
        t += beat
        k += 1
    return x[None]


def test_subdivision_contrast_tells_ternary_from_binary() -> None:
    # a 0.6 s beat: jig rhythms (beats in three: 1-2-3, long-short) vs 2/4 (beats in two and four)
    jig = _pattern(30, [[0, 1 / 3, 2 / 3], [0, 2 / 3], [0, 1 / 3, 2 / 3], [0]])
    two_four = _pattern(30, [[0, 0.5], [0, 0.25, 0.5, 0.75], [0, 0.5], [0]])
    rj = subdivision_ratios(autocorrelation(onset_train(jig)))
    rb = subdivision_ratios(autocorrelation(onset_train(two_four)))
    beat = len(RATIO_MULTIPLES) + 2  # the log-period column of the first beat range
    assert torch.allclose(rj[0, beat], rb[0, beat])  # both beats found at 0.6 s ...
    assert abs(float(rj[0, beat]) - np.log(30 / FPS)) < 1e-5
    ternary = len(RATIO_MULTIPLES)  # ... and the ternary-minus-binary contrast separates them
    assert rj[0, ternary] > 0.3 > -0.1 > rb[0, ternary]


def test_feature_width_and_short_clips() -> None:
    for n in (T, 100, 30):
        f = rhythm_v2_features(torch.rand(3, n))
        assert f.shape == (3, RHYTHM_V2_DIM) and torch.isfinite(f).all()


def test_v2_model_embeds_and_v1_config_is_unchanged() -> None:
    v1, v2 = ClapMini(), ClapMini(rhythm=2)
    assert v1.config == {"dim": 512, "width": 16}  # v1 weights' sidecar loads as before
    assert v2.config["rhythm"] == 2
    feats = {"logmel": torch.randn(2, 64, T), "chroma": torch.rand(2, 24, T), "onset": torch.rand(2, T)}
    assert v2.embed_audio_feats(feats).shape == (2, 512)
    extra = sum(p.numel() for p in v2.parameters()) - sum(p.numel() for p in v1.parameters())
    assert extra == RHYTHM_V2_DIM * 192  # only the rhythm MLP's first layer grows


def test_tempo_of_the_pulse_is_in_the_features() -> None:
    slow, fast = _envelope(40, [1.0]), _envelope(20, [1.0])
    fs, ff = rhythm_v2_features(slow), rhythm_v2_features(fast)
    # the log-period entries of the subdivision block differ by log(2)
    idx = 2 * (MAX_LAG - MIN_LAG) + len(RATIO_MULTIPLES) + 2
    assert abs(float(fs[0, idx] - ff[0, idx]) - np.log(2)) < 0.1
    assert FPS == 50


def _legato(beat: int, notes_per_beat: int, n: int = T) -> torch.Tensor:
    """Chroma ``[1, 24, n]`` of a legato line: a new pitch class every ``beat / notes_per_beat``
    frames with no gap and no level change, so an onset envelope would see nothing."""
    chroma = torch.zeros(1, 24, n)
    step = beat // notes_per_beat
    for k, t in enumerate(range(0, n, step)):
        chroma[0, (k * 7) % 12, t:t + step] = 1.0  # a walk around the circle of fifths
    return chroma


def test_pitch_change_envelope_hears_legato_note_changes() -> None:
    chroma = _legato(30, 3)
    env = pitch_change_envelope(chroma)
    changes = torch.nonzero(env[0] > 0.5).flatten()
    assert changes.tolist() == list(range(10, T, 10))  # every note change, nothing between
    assert float(env.amax()) == pytest.approx(1.0, abs=1e-5)


def test_v3_features_tell_ternary_from_binary_legato_lines() -> None:
    ternary = rhythm_v3_features(_legato(30, 3))
    binary = rhythm_v3_features(_legato(30, 2))
    assert ternary.shape == (1, RHYTHM_V3_DIM) and torch.isfinite(ternary).all()
    # the autocorrelation block: a note every 10 frames repeats at lag 10, one every 15 does not
    lag10 = 10 - MIN_LAG
    assert ternary[0, lag10] > 0.5 > binary[0, lag10]


def test_v3_model_grows_only_the_rhythm_input() -> None:
    v2, v3 = ClapMini(rhythm=2), ClapMini(rhythm=3)
    assert v3.config["rhythm"] == 3
    feats = {"logmel": torch.randn(2, 64, T), "chroma": torch.rand(2, 24, T), "onset": torch.rand(2, T)}
    assert v3.embed_audio_feats(feats).shape == (2, 512)
    extra = sum(p.numel() for p in v3.parameters()) - sum(p.numel() for p in v2.parameters())
    assert extra == RHYTHM_V3_DIM * 192
