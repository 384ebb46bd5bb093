"""Whatever bytes an upload holds, decoding refuses it with a DecodeError (a 4xx), never a 500."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.audio import decode_query_clip, validate
from index.errors import DecodeError

EXTS = ("wav", "flac", "ogg", "mp3", "opus")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One short, valid stereo tone per format, to be mangled."""
    from tests.conftest import write_tone

    root = tmp_path_factory.mktemp("seeds")
    return {ext: write_tone(root / f"t.{ext}", (440.0,), 1.5, 22050, channels=2).read_bytes()
            for ext in EXTS}


def _huge_headers(seeds: dict[str, bytes]) -> list[bytes]:
    """Headers that declare absurd rates, channel counts and lengths over little data."""
    wav = bytearray(seeds["wav"])
    fmt = wav.index(b"fmt ") + 8
    wav[fmt + 2:fmt + 8] = b"\xff\xff\xff\xff\xff\xff"  # 65535 channels at 4 GHz
    wav_len = bytearray(seeds["wav"])
    data = wav_len.index(b"data")
    wav_len[data + 4:data + 8] = b"\xf0\xff\xff\xff"
    flac = bytearray(seeds["flac"])
    flac[18:26] = b"\xff" * 8  # STREAMINFO: 1 MHz, 8 channels, 32 bits, 2**36 - 1 samples
    mp3 = bytearray(seeds["mp3"])
    at = mp3.find(b"Xing")
    if at >= 0:
        mp3[at + 8:at + 12] = b"\xff\xff\xff\xff"  # frame count
    return [bytes(wav), bytes(wav_len), bytes(flac), bytes(mp3)]


def _only_decode_errors(data: bytes) -> None:
    for call in (lambda: decode_query_clip(data, 16000, max_s=2.0), lambda: validate(data)):
        try:
            result = call()
        except DecodeError:
            continue
        assert result is not None  # accepted: fine, as long as nothing else escaped


def test_mangled_files_raise_only_decode_errors(seeds: dict[str, bytes]) -> None:
    rng = np.random.default_rng(7)
    variants: list[bytes] = [b"", b"\x00", bytes(4096), *_huge_headers(seeds)]
    for data in seeds.values():
        n = len(data)
        variants += [data[:k] for k in (4, 12, 44, 64, 200, n // 3, n - 1)]
        for _ in range(12):  # garbled: a few random bytes overwritten
            garbled = np.frombuffer(data, dtype=np.uint8).copy()
            at = rng.integers(0, n, size=int(rng.integers(1, 16)))
            garbled[at] = rng.integers(0, 256, size=len(at), dtype=np.uint8)
            variants.append(garbled.tobytes())
        variants.append(data[:16] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    variants += [rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() for _ in range(10)]
    for data in variants:
        _only_decode_errors(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ext=st.sampled_from(EXTS), cut=st.integers(0, 10_000),
       patch=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=8))
def test_any_patch_of_a_header_raises_only_decode_errors(
        seeds: dict[str, bytes], ext: str, cut: int, patch: list[tuple[int, int]]) -> None:
    data = bytearray(seeds[ext][: max(len(seeds[ext]) - cut, 0)])
    for at, value in patch:
        if at < len(data):
            data[at] = value
    _only_decode_errors(bytes(data))


def test_many_channels_and_a_long_wav_decode_in_bounded_blocks(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.full((2000, 64), 0.25, dtype=np.float32), 8000, format="WAV")
    clip = decode_query_clip(buf.getvalue(), 8000, max_s=0.1)
    assert len(clip) == 800 and float(clip.max()) == pytest.approx(0.25, abs=1e-3)
