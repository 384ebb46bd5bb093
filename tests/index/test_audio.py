"""Decoding every format, resampling fidelity, and the zoo of files validation must refuse."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from index.audio import decode, loudness_db, probe, validate
from index.errors import DecodeError


def dominant_hz(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sample_rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "opus"])
def test_decode_every_format_to_mono_float32(tmp_path: Path, tone_writer, ext: str) -> None:
    path = tone_writer(tmp_path / f"tone.{ext}", (440.0,), 2.0, 22050, channels=2)
    info = probe(path)
    assert info.format == ("ogg" if ext == "opus" else ext)
    assert info.channels == 2
    wave = decode(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) / info.sample_rate - 2.0) < 0.1
    assert abs(dominant_hz(wave, info.sample_rate) - 440.0) < 3.0
    # From bytes too: the API decodes uploads without touching the disk.
    assert len(decode(path.read_bytes())) == len(wave)


@pytest.mark.parametrize(("src_sr", "dst_sr", "freq"),
                         [(44100, 16000, 1000.0), (22050, 48000, 3000.0), (48000, 22050, 440.0)])
def test_resampling_preserves_frequency_and_length(tmp_path: Path, tone_writer, src_sr: int,
                                                   dst_sr: int, freq: float) -> None:
    path = tone_writer(tmp_path / "tone.flac", (freq,), 2.0, src_sr)
    wave = decode(path, dst_sr)
    assert len(wave) == pytest.approx(2.0 * dst_sr, abs=2)
    assert dominant_hz(wave, dst_sr) == pytest.approx(freq, abs=1.0)
    assert float(np.max(np.abs(wave))) == pytest.approx(0.3, abs=0.02)


def test_decode_crop_seeks(tmp_path: Path) -> None:
    sr = 8000
    ramp = np.linspace(-0.5, 0.5, 4 * sr, dtype=np.float32)
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp, sr, subtype="FLOAT")
    crop = decode(path, start_s=1.0, duration_s=0.5)
    np.testing.assert_allclose(crop, ramp[sr:sr + sr // 2])
    with pytest.raises(DecodeError, match="past the end"):
        decode(path, start_s=10.0)
    with pytest.raises(ValueError, match="sample_rate"):
        decode(path, 0)


def test_loudness_of_known_signals() -> None:
    t = np.arange(48000) / 48000
    assert loudness_db(np.sin(2 * np.pi * 100 * t)) == pytest.approx(-3.01, abs=0.01)
    assert loudness_db(np.full(100, 0.5)) == pytest.approx(20 * math.log10(0.5), abs=1e-6)
    assert loudness_db(np.zeros(10)) == -math.inf


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc
    pixels = zlib.compress(b"".join(b"\x00" + bytes(48) for _ in range(16)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def make_zoo(root: Path, tone_writer, rng: np.random.Generator) -> dict[str, str]:
    """Write one bad file per failure mode; return file name -> expected reason pattern."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.wav").write_bytes(b"")
    good_wav = tone_writer(root / "_w.wav", (440.0,), 3.0).read_bytes()
    (root / "truncated.wav").write_bytes(good_wav[: len(good_wav) // 2])
    good_flac = tone_writer(root / "_f.flac", (330.0,), 3.0).read_bytes()
    (root / "truncated.flac").write_bytes(good_flac[: len(good_flac) * 2 // 3])
    (root / "_w.wav").unlink()
    (root / "_f.flac").unlink()
    (root / "random.wav").write_bytes(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    (root / "notes.flac").write_text("these are my notes, not audio\n" * 20)
    (root / "image.mp3").write_bytes(_png())
    tone_writer(root / "short.wav", (440.0,), 0.3)
    tone_writer(root / "long.flac", (440.0,), 6.0)
    sf.write(root / "silent.wav", np.zeros(22050 * 2, dtype=np.float32), 22050)
    nan = np.sin(np.arange(22050 * 2) / 10).astype(np.float32)
    nan[30000] = np.nan
    sf.write(root / "nan.wav", nan, 22050, subtype="FLOAT")
    return {
        "empty.wav": "empty file",
        "truncated.wav": "truncated WAV: header declares 66150 frames",
        "truncated.flac": "truncated FLAC",
        "random.wav": "not an audio file",
        "notes.flac": "not an audio file: it is a text file",
        "image.mp3": "not an audio file: it is a PNG image",
        "short.wav": r"too short: 0\.30 s \(minimum 1 s\)",
        "long.flac": r"too long: 6\.0 s \(maximum 5 s\)",
        "silent.wav": "digital silence",
        "nan.wav": "NaN or infinite",
    }


def test_corrupt_file_zoo_is_refused_with_reasons(tmp_path: Path, tone_writer,
                                                  rng: np.random.Generator) -> None:
    expected = make_zoo(tmp_path, tone_writer, rng)
    for name, pattern in expected.items():
        with pytest.raises(DecodeError, match=pattern):
            validate(tmp_path / name, min_duration_s=1.0, max_duration_s=5.0)


def test_validate_accepts_good_audio(tmp_path: Path, tone_writer) -> None:
    path = tone_writer(tmp_path / "ok.mp3", (440.0,), 3.0, 22050, channels=2)
    result = validate(path, min_duration_s=1.0, max_duration_s=5.0)
    assert result.info.format == "mp3" and result.info.channels == 2
    assert result.info.duration_s == pytest.approx(3.0, abs=0.05)
    assert result.loudness_db == pytest.approx(20 * math.log10(0.3) - 3.01, abs=0.3)


def test_unsupported_audio_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tone.aiff"
    sf.write(path, np.ones(1000, dtype=np.float32) * 0.1, 8000, format="AIFF")
    with pytest.raises(DecodeError, match="not an audio file, or an unsupported format"):
        probe(path)
