"""Search clips are untrusted uploads: bounded memory, the same refusals as ingest, clean names."""

from __future__ import annotations

import io
import math
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from index.audio import decode, decode_query_clip, validate
from index.errors import DecodeError

HOUR_S = 3600
MAX_PEAK_BYTES = 50 * 2**20  # 30 s of 48 kHz mono float32 is 5.8 MB; an hour of stereo, 1.4 GB
_MP3_BITRATE_KBPS = {1: 32, 2: 40, 3: 48, 4: 56, 5: 64, 6: 80, 7: 96, 8: 112, 9: 128, 10: 160,
                     11: 192, 12: 224, 13: 256, 14: 320}


def _mp3_frames(data: bytes) -> list[bytes]:
    """Split a 48 kHz MPEG-1 layer III stream (as libsndfile writes it) into its frames."""
    frames, i = [], 0
    while i + 4 <= len(data):
        assert data[i] == 0xFF, "lost MP3 frame sync"
        size = 144 * _MP3_BITRATE_KBPS[data[i + 2] >> 4] * 1000 // 48000 + ((data[i + 2] >> 1) & 1)
        frames.append(data[i:i + size])
        i += size
    return frames


@pytest.fixture(scope="module")
def hour_flac() -> bytes:
    """One hour of 48 kHz stereo digital silence as FLAC: ~670 KB that decodes to 1.4 GB."""
    buf = io.BytesIO()
    minute = np.zeros((48000 * 60, 2), dtype=np.int16)
    with sf.SoundFile(buf, "w", 48000, 2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(HOUR_S // 60):
            f.write(minute)
    return buf.getvalue()


@pytest.fixture(scope="module")
def hour_mp3() -> bytes:
    """One hour of 48 kHz stereo silence as MP3 (14 MB, under the upload limit).

    Encoding an hour takes minutes, so a silent frame is repeated (a bare MPEG stream, no
    Xing header: mpg123 estimates the length, an hour, from the size and the bitrate).
    """
    buf = io.BytesIO()
    sf.write(buf, np.zeros((48000 * 2, 2), dtype=np.float32), 48000, format="MP3")
    return _mp3_frames(buf.getvalue())[10] * (HOUR_S * 48000 // 1152)


def _peak_bytes(fn: Callable[[], object]) -> tuple[object, int]:
    """Run ``fn``; return its result (or the exception it raised) and its traced peak memory."""
    tracemalloc.start()
    try:
        result: object = fn()
    except Exception as e:  # noqa: BLE001 - the caller asserts on what came out
        result = e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_an_hour_long_clip_is_refused_by_its_header(request: pytest.FixtureRequest,
                                                    fmt: str) -> None:
    data = request.getfixturevalue(f"hour_{fmt}")
    result, peak = _peak_bytes(lambda: decode_query_clip(data, 16000, filename=f"mix.{fmt}"))
    assert isinstance(result, DecodeError), result
    assert str(result).startswith(f"'mix.{fmt}': too long for a query clip")
    assert peak < MAX_PEAK_BYTES


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_without_header_limits_only_max_s_is_decoded(request: pytest.FixtureRequest,
                                                     fmt: str) -> None:
    data = request.getfixturevalue(f"hour_{fmt}")
    result, peak = _peak_bytes(lambda: decode_query_clip(
        data, 16000, max_declared_s=math.inf, max_ratio=math.inf))
    # Validation ran on the first 30 s, and only on them: the frame budget held.
    assert isinstance(result, DecodeError)
    assert str(result) == "the upload: digital silence: peak -inf dBFS over 30.00 s"
    assert peak < MAX_PEAK_BYTES


def test_a_decompression_bomb_is_refused_by_its_ratio(hour_flac: bytes) -> None:
    with pytest.raises(DecodeError, match=r"\(10\d\d:1, at most 400:1\).*decompression bomb"):
        decode_query_clip(hour_flac, 16000, max_declared_s=math.inf)


def test_decode_refuses_long_files_when_asked_and_crops_within_budget(hour_mp3: bytes) -> None:
    with pytest.raises(DecodeError, match=r"the upload: too long: 3600\.0 s \(at most 600 s\)"):
        decode(hour_mp3, max_s=600)
    crop, peak = _peak_bytes(lambda: decode(hour_mp3, 16000, start_s=60.0, duration_s=5.0))
    assert isinstance(crop, np.ndarray) and len(crop) == 5 * 16000
    assert peak < MAX_PEAK_BYTES


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "opus"])
def test_every_format_decodes_at_most_max_s(tmp_path: Path, tone_writer, ext: str) -> None:
    data = tone_writer(tmp_path / f"tone.{ext}", (440.0,), 3.0, 22050, channels=2).read_bytes()
    whole = decode_query_clip(data, 16000)
    assert whole.dtype == np.float32 and abs(len(whole) / 16000 - 3.0) < 0.1
    head = decode_query_clip(data, 16000, max_s=1.0)
    assert len(head) == 16000
    spectrum = np.abs(np.fft.rfft(head * np.hanning(len(head))))
    assert abs(float(np.fft.rfftfreq(len(head), 1 / 16000)[np.argmax(spectrum)]) - 440.0) < 3.0


def test_a_long_clip_matches_the_decode_of_its_first_max_s(tmp_path: Path, tone_writer) -> None:
    data = tone_writer(tmp_path / "long.flac", (330.0,), 40.0, 44100, channels=2).read_bytes()
    clip = decode_query_clip(data, 16000)
    np.testing.assert_allclose(clip, decode(data, 16000, duration_s=30.0), atol=1e-6)


def _query_zoo(root: Path, tone_writer) -> dict[str, bytes]:
    """Uploads search used to accept or crash on, which ingest refuses."""
    good = tone_writer(root / "_ok.wav", (440.0,), 2.0).read_bytes()
    lying = bytearray(good)
    data_at = lying.index(b"data")
    lying[data_at + 4:data_at + 8] = (len(good) * 4).to_bytes(4, "little")
    zoo = {"lying.wav": bytes(lying), "cut.wav": good[: len(good) // 2]}
    flac = tone_writer(root / "_ok.flac", (330.0,), 3.0).read_bytes()
    zoo["cut.flac"] = flac[: len(flac) * 2 // 3]
    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        wave = np.sin(np.arange(44100) / 10).astype(np.float32)
        wave[30000] = bad
        buf = io.BytesIO()
        sf.write(buf, wave, 22050, subtype="FLOAT", format="WAV")
        zoo[name] = buf.getvalue()
    buf = io.BytesIO()
    sf.write(buf, np.zeros(44100, dtype=np.float32), 22050, format="WAV")
    zoo["silent.wav"] = buf.getvalue()
    buf = io.BytesIO()
    sf.write(buf, np.full(1000, 0.1, dtype=np.float32), 8000, format="AIFF")
    zoo["tone.aiff"] = buf.getvalue()
    zoo["notes.mp3"] = b"these are my notes, not audio\n" * 20
    zoo["empty.ogg"] = b""
    zoo["header.wav"] = b"RIFF\x00\x00\x00\x00WAVEjunkjunk"
    return zoo


def test_a_clip_is_refused_for_exactly_the_reasons_ingest_refuses_it(tmp_path: Path,
                                                                     tone_writer) -> None:
    for name, data in _query_zoo(tmp_path, tone_writer).items():
        with pytest.raises(DecodeError) as ingest:
            validate(data)
        with pytest.raises(DecodeError) as query:
            decode_query_clip(data, 16000, filename=name)
        assert str(query.value) == f"{name!r}: {ingest.value}"


def _message(fn: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(DecodeError) as e:
        fn(*args, **kwargs)
    return str(e.value)


def test_messages_name_the_upload_never_an_object_or_a_temp_path(tmp_path: Path,
                                                                 tone_writer) -> None:
    server_tmp = tmp_path / "tunescope-upload-x7k2"
    server_tmp.mkdir()
    for name, data in _query_zoo(tmp_path, tone_writer).items():
        path = server_tmp / name
        path.write_bytes(data)
        messages = [_message(decode_query_clip, data, 16000),
                    _message(validate, path, filename=f"C:\\Music\\{name}"),
                    _message(validate, path)]
        if name in ("header.wav", "notes.mp3", "empty.ogg", "tone.aiff"):  # decode() refuses
            messages += [_message(decode, data), _message(decode, path)]
            assert messages[3].startswith("the upload: ")
            assert messages[4].startswith(f"{name!r}: ")
        for message in messages:
            assert "BytesIO" not in message and "0x" not in message and "<" not in message
            assert str(tmp_path) not in message and "x7k2" not in message, message
        assert messages[0].startswith("the upload: ")
        assert messages[1].startswith(f"{name!r}: ")
