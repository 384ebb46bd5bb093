"""Audio decoding and validation: wav/flac/ogg/mp3 to mono float32 (soundfile + soxr).

libsndfile does the decoding (it reads WAV, FLAC, Ogg Vorbis/Opus and MP3, from a path or from
bytes); soxr resamples. No torchaudio: ``index/`` must not need torch.

Validation streams the file in blocks instead of decoding it whole, so a 30-minute upload costs
a few megabytes of memory, and reports *why* a file is refused in words a user can act on.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from index.errors import DecodeError

Source = str | os.PathLike[str] | bytes

# libsndfile container name -> the extension tunescope stores the file under.
SUPPORTED_FORMATS: dict[str, str] = {
    "WAV": "wav",
    "WAVEX": "wav",
    "RF64": "wav",
    "FLAC": "flac",
    "OGG": "ogg",
    "MP3": "mp3",
}
# Extensions picked up when a folder is walked.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3"})
_SUPPORTED = "wav, flac, ogg, mp3"

# Peak at or below this is "digital silence": under one 16-bit LSB (-96 dBFS) plus margin.
SILENCE_PEAK_DBFS = -90.0
# Blocks decoded at a time while validating (~1.5 s at 44.1 kHz).
BLOCK_FRAMES = 65_536
# A decoded stream may come up this short of its header's frame count before it is called
# truncated: MP3 headers (Xing/LAME) are approximate by up to a couple of frames.
_TRUNCATION_SLACK_FRAMES = 2 * 1152

_NON_AUDIO_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"MThd", "a MIDI file (render it to audio first)"),
)


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file (before any decoding).

    Attributes:
        duration_s: frames / sample_rate (0.0 when the container does not say, e.g. some Ogg).
        sample_rate: native rate in Hz.
        channels: channel count.
        frames: frames per channel declared by the container.
        format: tunescope's name for the container: ``wav``, ``flac``, ``ogg`` or ``mp3``.
        subtype: libsndfile's codec name (``PCM_16``, ``VORBIS``, ``OPUS``...).
    """

    duration_s: float
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str = ""


@dataclass(frozen=True)
class ValidatedAudio:
    """A file that passed :func:`validate`, with what decoding it measured.

    Attributes:
        info: the container's description; ``info.frames``/``duration_s`` are the decoded ones.
        loudness_db: RMS level of the mono mix in dBFS.
        peak_db: sample peak of the mono mix in dBFS.
    """

    info: AudioInfo
    loudness_db: float
    peak_db: float


def _open_binary(source: Source) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    return open(source, "rb")  # noqa: SIM115 - the caller closes it


def _name(source: Source) -> str:
    return "<bytes>" if isinstance(source, bytes | bytearray | memoryview) else str(source)


def _size(source: Source) -> int:
    if isinstance(source, bytes | bytearray | memoryview):
        return len(source)
    return Path(source).stat().st_size


def _describe_non_audio(head: bytes) -> str | None:
    """Name what a file obviously is when it is not audio, so the reason is actionable."""
    for signature, what in _NON_AUDIO_SIGNATURES:
        if head.startswith(signature):
            return what
    sample = head[:512]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "a text file"
    return None


def _looks_like_audio(head: bytes) -> bool:
    """Magic-number check for the supported containers (keeps libmpg123 off non-audio data)."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return True
    if head[:4] in (b"fLaC", b"OggS") or head[:3] == b"ID3":
        return True
    # A bare MPEG audio frame: 11 sync bits, a valid layer, a bitrate index other than 15.
    return (
        len(head) >= 3
        and head[0] == 0xFF
        and (head[1] & 0xE0) == 0xE0
        and (head[1] & 0x06) != 0
        and (head[2] & 0xF0) != 0xF0
    )


def probe(source: Source) -> AudioInfo:
    """Read the container header of ``source`` (a path or the file's bytes).

    Raises:
        DecodeError: the file is empty, is not audio, or is audio in an unsupported format.
    """
    name = _name(source)
    try:
        size = _size(source)
    except OSError as e:
        raise DecodeError(f"cannot read {name}: {e.strerror or e}") from e
    if size == 0:
        raise DecodeError("empty file (0 bytes)")
    with _open_binary(source) as fh:
        head = fh.read(4096)
    if not _looks_like_audio(head):
        what = _describe_non_audio(head)
        if what:
            raise DecodeError(f"not an audio file: it is {what}")
        raise DecodeError(f"not an audio file, or an unsupported format (supported: {_SUPPORTED})")
    try:
        with _open_binary(source) as fh, sf.SoundFile(fh) as f:
            container, subtype = f.format, f.subtype
            sample_rate, channels, frames = f.samplerate, f.channels, f.frames
    except (sf.LibsndfileError, RuntimeError) as e:
        raise DecodeError(f"corrupt or unreadable audio header: {e}") from e
    fmt = SUPPORTED_FORMATS.get(container)
    if fmt is None:
        raise DecodeError(f"unsupported audio format {container!r} (supported: {_SUPPORTED})")
    if sample_rate <= 0 or channels <= 0:
        raise DecodeError(f"corrupt header: sample rate {sample_rate}, {channels} channels")
    frames = max(int(frames), 0)
    return AudioInfo(
        duration_s=frames / sample_rate,
        sample_rate=int(sample_rate),
        channels=int(channels),
        frames=frames,
        format=fmt,
        subtype=subtype,
    )


def _wav_declared_frames(fh: BinaryIO, size: int) -> tuple[int, int] | None:
    """Frames the WAV ``data`` chunk declares, and frames the file actually holds.

    libsndfile silently shortens a truncated WAV to what is there, so the header is read here.
    Returns None when the header cannot say (streamed WAVs write 0 or 0xFFFFFFFF as the size).
    """
    fh.seek(0)
    riff = fh.read(12)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        return None  # RF64 keeps its sizes elsewhere; libsndfile handles it
    block_align = 0
    offset = 12
    while offset + 8 <= size:
        fh.seek(offset)
        chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
        if chunk_id == b"fmt ":
            fmt = fh.read(16)
            if len(fmt) == 16:
                block_align = struct.unpack("<HHIIH", fmt[:14])[4]
        elif chunk_id == b"data":
            if block_align <= 0 or chunk_size in (0, 0xFFFFFFFF):
                return None
            available = size - (offset + 8)
            return chunk_size // block_align, max(available, 0) // block_align
        offset += 8 + chunk_size + (chunk_size & 1)
    return None


def _mono(block: np.ndarray) -> np.ndarray:
    """Average the channels. A matrix-vector product, because ``mean(axis=1)`` over a handful
    of channels runs one tiny reduction per frame and was the slowest step of ingestion."""
    block = np.asarray(block, dtype=np.float32)
    if block.ndim == 1:
        return block
    if block.shape[1] == 1:
        return block[:, 0]
    return block @ np.full(block.shape[1], 1.0 / block.shape[1], dtype=np.float32)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def loudness_db(wave: np.ndarray) -> float:
    """RMS level in dBFS (0 dBFS = a full-scale square wave; a full-scale sine is -3 dBFS).

    Args:
        wave: float samples in [-1, 1], shape ``[n]`` or ``[n, channels]`` (mixed to mono).

    Returns:
        The level, ``-inf`` for an empty or all-zero signal.
    """
    mono = _mono(np.asarray(wave, dtype=np.float32))
    if mono.size == 0:
        return -math.inf
    mean_square = float(np.dot(mono.astype(np.float64), mono.astype(np.float64)) / mono.size)
    return 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def validate(source: Source, *, min_duration_s: float = 0.0,
             max_duration_s: float = math.inf) -> ValidatedAudio:
    """Decode ``source`` completely (in blocks) and refuse it with a reason if it is unusable.

    Checks, in order: empty, not audio / unsupported format, too long by its header (refused
    before decoding), decode errors and truncation (header frames vs frames decodable),
    NaN/inf samples, too short, too long, digital silence.

    Args:
        source: a path or the file's bytes.
        min_duration_s: shortest accepted duration in seconds.
        max_duration_s: longest accepted duration in seconds.

    Returns:
        The container info (with the decoded frame count), loudness and peak.

    Raises:
        DecodeError: the message is the human-readable reason.
    """
    info = probe(source)
    if info.duration_s > max_duration_s:
        raise DecodeError(f"too long: {info.duration_s:.1f} s (maximum {max_duration_s:g} s)")
    size = _size(source)
    decoded = 0
    peak = 0.0
    sum_squares = 0.0
    with _open_binary(source) as fh:
        declared = _wav_declared_frames(fh, size) if info.format == "wav" else None
        if declared is not None and declared[1] < declared[0]:
            raise DecodeError(
                f"truncated WAV: header declares {declared[0]} frames "
                f"({declared[0] / info.sample_rate:.2f} s), file holds {declared[1]} "
                f"({declared[1] / info.sample_rate:.2f} s)"
            )
        fh.seek(0)
        try:
            with sf.SoundFile(fh if isinstance(source, bytes | bytearray | memoryview)
                              else os.fspath(source)) as f:
                while True:
                    block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                    if len(block) == 0:
                        break
                    if not np.isfinite(block).all():
                        at_s = decoded / info.sample_rate
                        raise DecodeError(f"invalid samples: NaN or infinite near {at_s:.2f} s")
                    mono = _mono(block)
                    peak = max(peak, float(mono.max(initial=0.0)), -float(mono.min(initial=0.0)))
                    sum_squares += float(np.dot(mono, mono))
                    decoded += len(block)
                    if decoded / info.sample_rate > max_duration_s:
                        raise DecodeError(f"too long: more than {max_duration_s:g} s of audio")
        except (sf.LibsndfileError, RuntimeError) as e:
            raise DecodeError(
                f"corrupt or truncated {info.format.upper()}: decoding failed after "
                f"{decoded / info.sample_rate:.2f} s of {info.duration_s:.2f} s ({e})"
            ) from e
    if info.frames > 0 and decoded < info.frames - _TRUNCATION_SLACK_FRAMES:
        raise DecodeError(
            f"truncated {info.format.upper()}: header declares {info.frames} frames "
            f"({info.duration_s:.2f} s), only {decoded} decodable "
            f"({decoded / info.sample_rate:.2f} s)"
        )
    if decoded == 0:
        fmt = info.format.upper()
        raise DecodeError(f"no decodable audio in this {fmt} (corrupt or truncated)")
    duration_s = decoded / info.sample_rate
    if duration_s < min_duration_s:
        raise DecodeError(f"too short: {duration_s:.2f} s (minimum {min_duration_s:g} s)")
    peak_db = _db(peak)
    if peak_db <= SILENCE_PEAK_DBFS:
        raise DecodeError(f"digital silence: peak {peak_db:.1f} dBFS over {duration_s:.2f} s")
    rms = math.sqrt(sum_squares / decoded)
    return ValidatedAudio(
        info=AudioInfo(
            duration_s, info.sample_rate, info.channels, decoded, info.format, info.subtype
        ),
        loudness_db=_db(rms),
        peak_db=peak_db,
    )


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample mono float32 audio with soxr's high-quality filter (identity when rates match)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(wave, dtype=np.float32)
    out = soxr.resample(np.asarray(wave, dtype=np.float32), orig_sr, target_sr, quality="HQ")
    return out.astype(np.float32, copy=False)


def decode(source: Source, sample_rate: int | None = None, *, start_s: float | None = None,
           duration_s: float | None = None) -> np.ndarray:
    """Decode ``source`` to mono float32, optionally a crop, optionally resampled.

    Args:
        source: a path or the file's bytes.
        sample_rate: rate of the result in Hz; None keeps the file's own rate.
        start_s: crop start in seconds (seeks; no decoding of what comes before).
        duration_s: crop length in seconds; None reads to the end.

    Returns:
        float32 ``[n]`` in [-1, 1] (channels averaged).

    Raises:
        DecodeError: the file cannot be read, or the crop lies outside it.
        ValueError: a negative ``start_s``/``duration_s`` or a non-positive ``sample_rate``.
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if start_s is not None and start_s < 0:
        raise ValueError(f"start_s must be >= 0, got {start_s}")
    if duration_s is not None and duration_s < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    info = probe(source)
    try:
        with _open_binary(source) as fh, sf.SoundFile(fh) as f:
            if start_s:
                start = int(round(start_s * f.samplerate))
                if info.frames and start >= info.frames:
                    end = info.duration_s
                    raise DecodeError(f"start_s={start_s} is past the end ({end:.2f} s)")
                f.seek(start)
            frames = -1 if duration_s is None else int(round(duration_s * f.samplerate))
            data = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise DecodeError(f"cannot decode {_name(source)}: {e}") from e
    mono = _mono(data)
    return resample(mono, info.sample_rate, sample_rate) if sample_rate else mono
