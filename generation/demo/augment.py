"""Production augmentation: what happens to music between a performance and a listener's file.

Why: the encoder learned our renderer (issue 16): on music rendered by another synth it fails
where the difference is only in the chain — a room, a mixing engineer's EQ and compressor, hiss,
a lossy codec, a playback level. :func:`produce` applies each of those stages with its own
probability, so no single chain is what "music" sounds like to the encoder.

Stages, in signal order (each optional):

1. room: a synthetic impulse response (direct sound, a few early reflections, then an
   exponentially decaying low-passed noise tail with RT60 in ``rt60_s``), mixed wet/dry;
2. EQ: RBJ-cookbook low shelf, high shelf and one peaking band (each +-``eq_db``), plus,
   sometimes, band-limiting (telephone band, AM-radio low-pass, or a high-pass);
3. compressor: feed-forward, RMS detector, threshold/ratio, attack/release; vectorised (the
   detector and both ballistics are ``lfilter`` one-pole filters, see :func:`compress`);
4. noise: white, pink or brown at an SNR drawn from ``snr_db``;
5. codec: an in-memory round trip through MP3 or OGG Vorbis with ``soundfile`` at a random
   bitrate/quality, aligned back (encoder delay) and padded/trimmed to the input length;
6. level: the peak set to a value drawn from ``level_dbfs``.

Everything is float32 mono at the caller's sample rate (no resampling), same length out as in,
and the output peak is <= 1. All randomness comes from the ``random.Random`` passed in, so a
seeded generator gives the same audio.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class ProductionConfig:
    """Probabilities (``p_*``) and ranges (uniform draws) of each production stage.

    Attributes:
        p_room: chance of a room; rt60_s: its reverberation time; wet: the wet share of the mix.
        p_eq: chance of shelves + a peaking band; eq_db: the largest boost or cut of each.
        p_band_limit: chance of band-limiting (phone band, AM low-pass or high-pass).
        p_compress: chance of compression; threshold_db (RMS dBFS), ratio, attack_ms,
            release_ms: its settings.
        p_noise: chance of added noise; snr_db: its signal-to-noise ratio.
        p_codec: chance of a lossy round trip; p_mp3: share of MP3 among them (else Vorbis);
            quality: soundfile's ``compression_level`` (0 best, 1 smallest).
        p_level: chance of a random output peak in level_dbfs (else only a peak over 1 is
            brought down to 1).
    """

    p_room: float = 0.6
    rt60_s: Range = (0.15, 1.6)
    wet: Range = (0.1, 0.6)
    p_eq: float = 0.7
    eq_db: float = 9.0
    p_band_limit: float = 0.15
    p_compress: float = 0.5
    threshold_db: Range = (-32.0, -12.0)
    ratio: Range = (1.5, 8.0)
    attack_ms: Range = (1.0, 30.0)
    release_ms: Range = (30.0, 400.0)
    p_noise: float = 0.4
    snr_db: Range = (15.0, 50.0)
    p_codec: float = 0.3
    p_mp3: float = 0.5
    quality: Range = (0.2, 0.95)
    p_level: float = 1.0
    level_dbfs: Range = (-24.0, -1.0)

    @classmethod
    def none(cls) -> ProductionConfig:
        """A config that applies nothing: the output is the input (scaled only if its peak > 1)."""
        return cls(p_room=0.0, p_eq=0.0, p_band_limit=0.0, p_compress=0.0, p_noise=0.0,
                   p_codec=0.0, p_level=0.0)

    def only(self, stage: str) -> ProductionConfig:
        """This config with one stage always on and every other stage off (tests, debugging).

        Args:
            stage: one of ``room``, ``eq``, ``band_limit``, ``compress``, ``noise``, ``codec``.

        Returns:
            The new config (level stays as configured here).
        """
        off = {f"p_{s}": 0.0 for s in _STAGES}
        return replace(self, **{**off, f"p_{stage}": 1.0})


_STAGES = ("room", "eq", "band_limit", "compress", "noise", "codec")
#: Sample rates MPEG-1/2/2.5 Layer III can carry; at any other rate the codec stage uses Vorbis.
MP3_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
_EPS = 1e-9


def _peak(x: np.ndarray) -> float:
    return float(np.abs(x).max()) if x.size else 0.0


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


# --- room ------------------------------------------------------------------------------------

def room_ir(sr: int, rt60: float, nrng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: direct sound, early reflections, decaying tail.

    The tail is noise through a one-pole low-pass (walls absorb highs) under an exponential
    envelope reaching -60 dB at ``rt60``; it starts after the last early reflection.

    Args:
        sr: sample rate.
        rt60: reverberation time in seconds.
        nrng: numpy generator for the noise and reflection times.

    Returns:
        float32 impulse response with ``ir[0] == 1`` (the direct sound, so no added delay).
    """
    from scipy.signal import lfilter

    n = max(2, int(rt60 * sr))
    ir = np.zeros(n, dtype=np.float64)
    ir[0] = 1.0
    k = int(nrng.integers(3, 9))
    times = np.sort(nrng.uniform(0.004, 0.05, k))
    idx = np.minimum((times * sr).astype(int), n - 1)
    ir[idx] += nrng.choice([-1.0, 1.0], k) * nrng.uniform(0.2, 0.7, k) * np.exp(-times / 0.05)
    start = int(idx.max()) + 1
    t = np.arange(n - start) / sr
    a = float(nrng.uniform(0.2, 0.85))  # low-pass pole: larger is darker
    tail = lfilter([1 - a], [1, -a], nrng.standard_normal(n - start))
    ir[start:] += 0.5 * tail * np.exp(-6.9 * t / rt60)
    return ir.astype(np.float32)


def apply_room(x: np.ndarray, sr: int, rt60: float, wet: float, nrng: np.random.Generator) -> np.ndarray:
    """Convolve with :func:`room_ir` and mix; the wet part is matched to the dry RMS first.

    Args:
        x: float32 mono signal.
        sr: sample rate.
        rt60: reverberation time in seconds.
        wet: share of the reverberant signal in the mix (0 dry .. 1 wet).
        nrng: numpy generator.

    Returns:
        The mixed signal, same length.
    """
    from scipy.signal import oaconvolve

    y = oaconvolve(x, room_ir(sr, rt60, nrng))[: len(x)]
    y *= _rms(x) / (_rms(y) + _EPS)
    return ((1 - wet) * x + wet * y).astype(np.float32)


# --- EQ ----------------------------------------------------------------------------------------

def biquad(kind: str, f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """One RBJ-cookbook biquad as a second-order section ``[b0, b1, b2, 1, a1, a2]``.

    Args:
        kind: ``lowshelf``, ``highshelf`` or ``peak``.
        f0: corner or centre frequency in Hz.
        gain_db: boost (positive) or cut (negative).
        q: quality factor (shelves: slope 1 for q=0.707).
        sr: sample rate.

    Returns:
        float64 array of 6 coefficients, normalised so a0 = 1.
    """
    amp = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * min(f0, 0.45 * sr) / sr
    cw, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * amp, -2 * cw, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cw, 1 - alpha / amp]
    else:
        s = 2 * np.sqrt(amp) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [amp * ((amp + 1) - sign * (amp - 1) * cw + s), sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cw),
             amp * ((amp + 1) - sign * (amp - 1) * cw - s)]
        a = [(amp + 1) + sign * (amp - 1) * cw + s, -sign * 2 * ((amp - 1) + sign * (amp + 1) * cw),
             (amp + 1) + sign * (amp - 1) * cw - s]
    return np.array([*(np.array(b) / a[0]), 1.0, a[1] / a[0], a[2] / a[0]])


def _eq_params(rng: random.Random, cfg: ProductionConfig, sr: int) -> dict[str, Any]:
    g = cfg.eq_db
    return {"low_hz": rng.uniform(80, 400), "low_db": rng.uniform(-g, g),
            "high_hz": rng.uniform(2000, min(8000, 0.4 * sr)), "high_db": rng.uniform(-g, g),
            "peak_hz": rng.uniform(200, min(5000, 0.4 * sr)), "peak_db": rng.uniform(-g, g),
            "peak_q": rng.uniform(0.5, 3.0)}


def apply_eq(x: np.ndarray, sr: int, p: dict[str, Any]) -> np.ndarray:
    """Low shelf, high shelf and peaking band with the settings of ``p`` (see ``_eq_params``).

    Args:
        x: float32 mono signal.
        sr: sample rate.
        p: ``low_hz/low_db``, ``high_hz/high_db``, ``peak_hz/peak_db/peak_q``.

    Returns:
        The filtered signal.
    """
    from scipy.signal import sosfilt

    sos = np.stack([biquad("lowshelf", p["low_hz"], p["low_db"], 0.707, sr),
                    biquad("highshelf", p["high_hz"], p["high_db"], 0.707, sr),
                    biquad("peak", p["peak_hz"], p["peak_db"], p["peak_q"], sr)])
    return sosfilt(sos, x).astype(np.float32)


def band_limit(x: np.ndarray, sr: int, kind: str, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Telephone band (``phone``), a low-pass (``lowpass``, AM radio) or a ``highpass``.

    Args:
        x: float32 mono signal.
        sr: sample rate.
        kind: ``phone``, ``lowpass`` or ``highpass``.
        lo_hz: high-pass corner (phone, highpass).
        hi_hz: low-pass corner (phone, lowpass); capped below Nyquist.

    Returns:
        The filtered signal.
    """
    from scipy.signal import butter, sosfilt

    hi = min(hi_hz, 0.45 * sr)
    if kind == "phone":
        sos = butter(4, [lo_hz, hi], btype="bandpass", fs=sr, output="sos")
    elif kind == "lowpass":
        sos = butter(6, hi, btype="lowpass", fs=sr, output="sos")
    else:
        sos = butter(2, lo_hz, btype="highpass", fs=sr, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def _band_params(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["phone", "lowpass", "highpass"])
    lo = {"phone": rng.uniform(250, 400), "lowpass": 0.0, "highpass": rng.uniform(80, 400)}[kind]
    hi = {"phone": rng.uniform(3000, 3600), "lowpass": rng.uniform(2500, 5000), "highpass": 0.0}[kind]
    return {"kind": kind, "lo_hz": lo, "hi_hz": hi}


# --- compressor --------------------------------------------------------------------------------

def _one_pole(x: np.ndarray, tau_s: float, sr: int) -> np.ndarray:
    from scipy.signal import lfilter

    a = float(np.exp(-1.0 / max(tau_s * sr, 1e-3)))
    return lfilter([1 - a], [1, -a], x)


def compress(x: np.ndarray, sr: int, threshold_db: float, ratio: float, attack_ms: float,
             release_ms: float) -> np.ndarray:
    """Feed-forward compressor with an RMS detector, vectorised.

    The detector is a 5 ms one-pole average of ``x**2``; the static curve reduces the level
    above ``threshold_db`` by ``1 - 1/ratio``. Ballistics without a per-sample loop: the gain
    reduction ``r`` (dB) is smoothed with the attack time (``A``), ``A`` again with the release
    time (``R``), and ``max(A, R)`` is used: it rises at the attack rate (A leads) and falls at
    the release rate (R lags). The gain looks ahead by attack + detector time (as mastering
    compressors do), so note onsets are caught rather than passed through at full level, which
    is what lowers the crest factor. Half the reduction at the signal's RMS is given back as
    make-up.

    Args:
        x: float32 mono signal.
        sr: sample rate.
        threshold_db: RMS level (dBFS) above which the gain is reduced.
        ratio: input dB per output dB above the threshold.
        attack_ms: attack time constant.
        release_ms: release time constant.

    Returns:
        The compressed signal.
    """
    power = _one_pole(np.square(x, dtype=np.float64), 0.005, sr)
    level = 10 * np.log10(np.maximum(power, 1e-12))
    reduction = np.maximum(level - threshold_db, 0.0) * (1 - 1 / ratio)
    att = _one_pole(reduction, attack_ms / 1000, sr)
    smooth = np.maximum(att, _one_pole(att, release_ms / 1000, sr))
    ahead = min(int((attack_ms / 1000 + 0.005) * sr), len(x) - 1)
    smooth = np.concatenate([smooth[ahead:], np.full(ahead, smooth[-1])])  # look-ahead
    rms_db = 20 * np.log10(_rms(x) + _EPS)
    makeup = 0.5 * max(rms_db - threshold_db, 0.0) * (1 - 1 / ratio)
    return (x * 10 ** ((makeup - smooth) / 20)).astype(np.float32)


# --- noise ---------------------------------------------------------------------------------------

def coloured_noise(n: int, colour: str, nrng: np.random.Generator, sr: int) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) noise of unit RMS, by FFT shaping.

    Args:
        n: number of samples.
        colour: ``white``, ``pink`` or ``brown``.
        nrng: numpy generator.
        sr: sample rate (the shaping flattens below 20 Hz so brown noise has no huge DC drift).

    Returns:
        float32 noise.
    """
    w = nrng.standard_normal(n)
    if colour != "white" and n > 1:
        spec = np.fft.rfft(w)
        f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
        spec *= f ** (-{"pink": 0.5, "brown": 1.0}[colour])
        spec[0] = 0.0
        w = np.fft.irfft(spec, n)
    return (w / (_rms(w) + _EPS)).astype(np.float32)


def add_noise(x: np.ndarray, sr: int, colour: str, snr_db: float, nrng: np.random.Generator) -> np.ndarray:
    """Add noise whose power is ``snr_db`` below the signal's (whole-clip power).

    Args:
        x: float32 mono signal.
        sr: sample rate.
        colour: see :func:`coloured_noise`.
        snr_db: signal-to-noise ratio in dB.
        nrng: numpy generator.

    Returns:
        The noisy signal.
    """
    return (x + coloured_noise(len(x), colour, nrng, sr) * (_rms(x) * 10 ** (-snr_db / 20))).astype(np.float32)


# --- codec -----------------------------------------------------------------------------------------

def _lag(ref: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """Delay of ``y`` relative to ``ref`` (samples, within +-max_lag), by FFT cross-correlation."""
    from scipy.signal import correlate

    n = min(len(ref), len(y), 1 << 15)
    if n <= 2 * max_lag:
        return 0
    c = correlate(y[:n], ref[max_lag:n - max_lag], mode="valid", method="fft")
    return int(np.argmax(c)) - max_lag


def codec_round_trip(x: np.ndarray, sr: int, fmt: str, quality: float) -> np.ndarray:
    """Encode to MP3 or OGG Vorbis in memory with ``soundfile``, decode, align, fit the length.

    libsndfile already trims the encoder delay of its MP3 and Vorbis streams; the lag is still
    measured (up to 4096 samples) and undone, since another libsndfile build may not.

    Args:
        x: float32 mono signal.
        sr: sample rate (MP3 only at :data:`MP3_RATES`; no resampling is done here).
        fmt: ``mp3`` or ``ogg``.
        quality: ``compression_level`` in [0, 1] (0 best quality, 1 smallest file).

    Returns:
        The decoded signal, same length as ``x``.
    """
    import soundfile as sf

    buf = io.BytesIO()
    peak = _peak(x)
    scale = 0.9 / peak if peak > 0.9 else 1.0  # the codec clips above full scale
    subtype, kw = ("MPEG_LAYER_III", {"bitrate_mode": "VARIABLE"}) if fmt == "mp3" else ("VORBIS", {})
    sf.write(buf, x * scale, sr, format="MP3" if fmt == "mp3" else "OGG", subtype=subtype,
             compression_level=quality, **kw)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32", always_2d=False)
    y = y if y.ndim == 1 else y.mean(1)
    lag = _lag(x, y, 4096)
    y = y[lag:] if lag > 0 else np.concatenate([np.zeros(-lag, np.float32), y])
    y = np.pad(y[: len(x)], (0, max(0, len(x) - len(y))))
    return (y / scale).astype(np.float32)


# --- the chain -----------------------------------------------------------------------------------

def _draw(rng: random.Random, r: Range) -> float:
    return rng.uniform(*r)


def _stage_params(rng: random.Random, cfg: ProductionConfig, sr: int) -> dict[str, dict[str, Any]]:
    """Decide which stages apply and draw their settings (every draw from ``rng``, in order)."""
    p: dict[str, dict[str, Any]] = {}
    if rng.random() < cfg.p_room:
        p["room"] = {"rt60": _draw(rng, cfg.rt60_s), "wet": _draw(rng, cfg.wet)}
    if rng.random() < cfg.p_eq:
        p["eq"] = _eq_params(rng, cfg, sr)
    if rng.random() < cfg.p_band_limit:
        p["band_limit"] = _band_params(rng)
    if rng.random() < cfg.p_compress:
        p["compress"] = {"threshold_db": _draw(rng, cfg.threshold_db), "ratio": _draw(rng, cfg.ratio),
                         "attack_ms": _draw(rng, cfg.attack_ms), "release_ms": _draw(rng, cfg.release_ms)}
    if rng.random() < cfg.p_noise:
        p["noise"] = {"colour": rng.choice(["white", "pink", "brown"]), "snr_db": _draw(rng, cfg.snr_db)}
    if rng.random() < cfg.p_codec:
        mp3 = rng.random() < cfg.p_mp3 and sr in MP3_RATES
        p["codec"] = {"fmt": "mp3" if mp3 else "ogg", "quality": _draw(rng, cfg.quality)}
    if rng.random() < cfg.p_level:
        p["level"] = {"peak_dbfs": _draw(rng, cfg.level_dbfs)}
    return p


def produce_with_params(audio: np.ndarray, sr: int, rng: random.Random,
                        cfg: ProductionConfig = ProductionConfig()) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`produce`, and the stages applied with their settings (for tests and debugging).

    Args:
        audio: float32 (or any float) mono signal.
        sr: its sample rate.
        rng: the source of every random choice (seed it for reproducible audio).
        cfg: stage probabilities and ranges.

    Returns:
        (float32 signal of the same length with peak <= 1, ``{stage: settings}`` of the stages
        applied, in order; ``level`` also reports the ``gain`` it applied).
    """
    x = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1))
    params = _stage_params(rng, cfg, sr)
    if not x.size:
        return x.copy(), params
    nrng = np.random.default_rng(rng.randrange(2**32))
    if "room" in params:
        x = apply_room(x, sr, params["room"]["rt60"], params["room"]["wet"], nrng)
    if "eq" in params:
        x = apply_eq(x, sr, params["eq"])
    if "band_limit" in params:
        x = band_limit(x, sr, **params["band_limit"])
    if "compress" in params:
        x = compress(x, sr, **params["compress"])
    if "noise" in params:
        x = add_noise(x, sr, params["noise"]["colour"], params["noise"]["snr_db"], nrng)
    if "codec" in params:
        x = codec_round_trip(x, sr, **params["codec"])
    peak = _peak(x)
    if "level" in params:
        gain = 10 ** (params["level"]["peak_dbfs"] / 20) / (peak + _EPS)
    else:
        gain = 1.0 / peak if peak > 1.0 else 1.0
    params.setdefault("level", {})["gain"] = gain
    return np.clip(x * gain, -1.0, 1.0).astype(np.float32), params


def produce(audio: np.ndarray, sr: int, rng: random.Random, cfg: ProductionConfig = ProductionConfig()) -> np.ndarray:
    """Apply a random production chain (see the module docstring).

    Args:
        audio: float32 mono in.
        sr: its sample rate.
        rng: the source of every random choice (seed it for reproducible audio).
        cfg: stage probabilities and ranges; ``ProductionConfig.none()`` changes nothing.

    Returns:
        float32 mono out, same length, peak <= 1.
    """
    return produce_with_params(audio, sr, rng, cfg)[0]
