"""Production augmentation: shape, bounds, determinism and what each stage does to the signal."""

from __future__ import annotations

import random

import numpy as np
import pytest

from generation.demo.augment import (
    ProductionConfig,
    add_noise,
    apply_eq,
    biquad,
    codec_round_trip,
    compress,
    produce,
    produce_with_params,
)

SR = 16000


def _music(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Plucked-string-like notes (decaying harmonics) with loud and soft phrases."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    t = np.arange(int(0.25 * SR)) / SR
    for i, start in enumerate(range(0, n - len(t), len(t))):
        f0 = 220 * 2 ** (rng.integers(0, 12) / 12)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * np.exp(-t / 0.08)
        out[start:start + len(t)] += (1.0 if (i // 4) % 2 == 0 else 0.1) * note
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return spec[(f >= lo) & (f < hi)].sum()


@pytest.mark.parametrize("seed", range(12))
def test_same_length_finite_and_peak_bounded(seed):
    x = _music(3.0, seed)
    y = produce(x * 3.0, SR, random.Random(seed))  # an over-full input too
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_silence_and_empty_input():
    assert produce(np.zeros(SR, np.float32), SR, random.Random(0)).shape == (SR,)
    assert np.isfinite(produce(np.zeros(SR, np.float32), SR, random.Random(1))).all()
    assert produce(np.zeros(0, np.float32), SR, random.Random(0)).shape == (0,)


def test_deterministic_for_a_seeded_rng():
    x = _music()
    a, pa = produce_with_params(x, SR, random.Random("s1"))
    b, pb = produce_with_params(x, SR, random.Random("s1"))
    c = produce(x, SR, random.Random("s2"))
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c)


def test_none_is_identity_up_to_level():
    x = _music()
    y, params = produce_with_params(x, SR, random.Random(0), ProductionConfig.none())
    assert set(params) == {"level"}
    np.testing.assert_array_equal(y, x)
    z = produce(x * 4, SR, random.Random(0), ProductionConfig.none())
    np.testing.assert_allclose(z, x * 4 / np.abs(x * 4).max(), atol=1e-6)


def test_every_stage_is_used_by_the_default_chain():
    seen = set()
    for seed in range(40):
        seen |= set(produce_with_params(_music(0.5), SR, random.Random(seed))[1])
    assert seen == {"room", "eq", "band_limit", "compress", "noise", "codec", "level"}


def test_level_lands_in_range():
    for seed in range(10):
        y, p = produce_with_params(_music(1.0), SR, random.Random(seed), ProductionConfig().only("eq"))
        assert 20 * np.log10(np.abs(y).max()) == pytest.approx(p["level"]["peak_dbfs"], abs=0.01)
        assert -24 <= p["level"]["peak_dbfs"] <= -1


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
@pytest.mark.parametrize("quality", [0.2, 0.9])
def test_codec_round_trip_keeps_the_signal(fmt, quality):
    x = _music(3.0)
    y = codec_round_trip(x, SR, fmt, quality)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.corrcoef(x, y)[0, 1] > 0.9  # already aligned: encoder delay undone


def test_codec_alignment_undoes_a_delay(monkeypatch):
    from generation.demo import augment

    x = _music(2.0)
    assert augment._lag(x, np.concatenate([np.zeros(700, np.float32), x]), 4096) == 700
    assert augment._lag(x, x[300:], 4096) == -300


def test_compressor_reduces_crest_factor():
    x = _music(4.0)

    def crest(s):
        return np.abs(s).max() / np.sqrt(np.mean(s ** 2))

    def phrase_ratio(s):  # loud phrases over soft phrases (1 s each), in dB
        e = [np.sqrt(np.mean(s[i * SR:(i + 1) * SR] ** 2)) for i in range(4)]
        return 20 * np.log10((e[0] + e[2]) / (e[1] + e[3]))

    y = compress(x, SR, threshold_db=-30, ratio=6, attack_ms=5, release_ms=100)
    assert crest(y) < crest(x)
    assert phrase_ratio(y) < phrase_ratio(x) - 6
    gentle = compress(x, SR, threshold_db=-30, ratio=1.0, attack_ms=5, release_ms=100)
    np.testing.assert_allclose(gentle, x, rtol=1e-5, atol=1e-6)  # ratio 1 changes nothing


def test_eq_changes_the_spectrum_in_the_right_band():
    x = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    flat = {"low_hz": 200, "low_db": 0.0, "high_hz": 4000, "high_db": 0.0, "peak_hz": 1000,
            "peak_db": 0.0, "peak_q": 1.0}
    np.testing.assert_allclose(apply_eq(x, SR, flat), x, atol=1e-5)
    up = apply_eq(x, SR, {**flat, "peak_db": 9.0})
    gain = 10 * np.log10(_band_energy(up, 900, 1100) / _band_energy(x, 900, 1100))
    assert gain == pytest.approx(9.0, abs=1.0)
    assert abs(10 * np.log10(_band_energy(up, 6000, 7000) / _band_energy(x, 6000, 7000))) < 0.5
    low = apply_eq(x, SR, {**flat, "low_db": -9.0})
    assert 10 * np.log10(_band_energy(low, 20, 80) / _band_energy(x, 20, 80)) == pytest.approx(-9, abs=1.0)
    assert abs(10 * np.log10(_band_energy(low, 3000, 7000) / _band_energy(x, 3000, 7000))) < 0.5
    high = apply_eq(x, SR, {**flat, "high_db": 6.0})
    assert 10 * np.log10(_band_energy(high, 7000, 7900) / _band_energy(x, 7000, 7900)) == pytest.approx(6, abs=1.0)


def test_biquad_is_stable():
    for kind in ("lowshelf", "highshelf", "peak"):
        for g in (-9, 9):
            sos = biquad(kind, 500, g, 2.0, SR)
            assert np.all(np.abs(np.roots([1, sos[4], sos[5]])) < 1)


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [15.0, 30.0, 50.0])
def test_noise_at_the_asked_snr(colour, snr):
    x = _music(3.0)
    y = add_noise(x, SR, colour, snr, np.random.default_rng(1))
    noise = y - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.1)


def test_noise_at_the_asked_snr_through_the_chain():
    x = _music(3.0)
    y, p = produce_with_params(x, SR, random.Random(3), ProductionConfig().only("noise"))
    g = float(y @ x / (x @ x))  # the level stage's gain, by projection
    measured = 10 * np.log10(np.sum((g * x) ** 2) / np.sum((y - g * x) ** 2))
    assert measured == pytest.approx(p["noise"]["snr_db"], abs=0.5)


def test_pink_and_brown_noise_tilt_downwards():
    from generation.demo.augment import coloured_noise

    rng = np.random.default_rng(0)
    tilt = {c: 10 * np.log10(_band_energy(coloured_noise(4 * SR, c, rng, SR), 100, 200)
                             / _band_energy(coloured_noise(4 * SR, c, rng, SR), 3200, 6400) * 32)
            for c in ("white", "pink", "brown")}
    assert abs(tilt["white"]) < 1.0
    assert tilt["pink"] == pytest.approx(10 * np.log10(32), abs=2)  # -3 dB per octave, 5 octaves
    assert tilt["brown"] == pytest.approx(20 * np.log10(32), abs=2)


def test_room_adds_a_tail():
    x = np.zeros(2 * SR, np.float32)
    x[:100] = 1.0
    y, p = produce_with_params(x, SR, random.Random(0), ProductionConfig(p_level=0.0).only("room"))
    after = y[int(0.2 * SR):int(0.3 * SR)]
    assert np.sqrt(np.mean(after ** 2)) > 1e-4 and 0.15 <= p["room"]["rt60"] <= 1.6


@pytest.mark.parametrize("sr", [16000, 22050, 96000])
def test_codec_stage_at_other_rates_and_short_inputs(sr):
    cfg = ProductionConfig().only("codec")
    for n in (1, 300, sr // 2):
        x = np.sin(np.arange(n) * 0.05).astype(np.float32) * 0.5
        y, p = produce_with_params(x, sr, random.Random(n), cfg)
        assert y.shape == x.shape and np.isfinite(y).all()
        assert sr != 96000 or p["codec"]["fmt"] == "ogg"
