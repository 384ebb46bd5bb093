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
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from index.audio_sniff import describe_non_audio, looks_like_audio, wav_declared_frames
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
# What libsndfile and soundfile raise on bad data; all become DecodeErrors.
_DECODER_ERRORS = (RuntimeError, ValueError, OverflowError)

# Search clips (untrusted uploads) with a header beyond these are refused before decoding.
# Declared length: ingest's default longest track; a longer "clip" is a mix, a lie or a bomb.
MAX_QUERY_DECLARED_S = 1800.0
# 16-bit PCM bytes declared per upload byte: Opus at 6 kb/s stereo is ~256:1, the densest real
# codec; an hour of FLAC silence is ~1000:1.
MAX_QUERY_RATIO = 400.0
# Above 384 kHz (DXD) is not music a listener uploads; it would also inflate the frame budget.
MAX_QUERY_SAMPLE_RATE = 384_000


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


def _is_bytes(source: Source) -> bool:
    return isinstance(source, bytes | bytearray | memoryview)


def _open_binary(source: Source) -> BinaryIO:
    if _is_bytes(source):
        return io.BytesIO(bytes(source))
    return open(source, "rb")  # the caller closes it


def _label(source: Source, filename: str | None = None) -> str:
    """How messages name a file: the user's own name for it, never a repr or a server path.

    A bytes source would otherwise print as ``<_io.BytesIO object at 0x...>`` and a path
    handed over by the server would show its temp folder; only the base name is the user's.
    """
    if filename:
        return repr(Path(filename.replace("\\", "/")).name[:200])
    return "the upload" if _is_bytes(source) else repr(Path(source).name)


def _reason(e: BaseException) -> str:
    """The decoder's own words for an error, without soundfile's "Error opening <object>:".

    libsndfile's message is kept because it names the actual problem; object reprs and quoted
    paths are replaced by "the file", because the caller prefixes the name the user knows (an
    upload's filename, never a server path).
    """
    if isinstance(e, sf.LibsndfileError):
        return e.error_string.rstrip(". ") or "unknown libsndfile error"
    return re.sub(r"<[^>]*>|'[^']*[/\\][^']*'", "the file", str(e)) or type(e).__name__


def _size(source: Source) -> int:
    if _is_bytes(source):
        return len(source)
    return Path(source).stat().st_size


def probe(source: Source, *, filename: str | None = None) -> AudioInfo:
    """Read the container header of ``source`` (a path or the file's bytes).

    Args:
        source: a path or the file's bytes.
        filename: the user's name for the file, used only in messages.

    Raises:
        DecodeError: the file is empty or unreadable, is not audio, or is audio in an
            unsupported format.
    """
    try:
        size = _size(source)
        with _open_binary(source) as fh:
            head = fh.read(4096)
    except OSError as e:
        raise DecodeError(f"cannot read {_label(source, filename)}: "
                          f"{e.strerror or 'I/O error'}") from e
    if size == 0:
        raise DecodeError("empty file (0 bytes)")
    if not looks_like_audio(head):
        what = describe_non_audio(head)
        if what:
            raise DecodeError(f"not an audio file: it is {what}")
        raise DecodeError(f"not an audio file, or an unsupported format (supported: {_SUPPORTED})")
    try:
        with _open_binary(source) as fh, sf.SoundFile(fh) as f:
            container, subtype = f.format, f.subtype
            sample_rate, channels, frames = f.samplerate, f.channels, f.frames
    except _DECODER_ERRORS as e:
        raise DecodeError(f"corrupt or unreadable audio header: {_reason(e)}") from e
    fmt = SUPPORTED_FORMATS.get(container)
    if fmt is None:
        raise DecodeError(f"unsupported audio format {container!r} (supported: {_SUPPORTED})")
    if sample_rate <= 0 or channels <= 0:
        raise DecodeError(f"corrupt header: sample rate {sample_rate}, {channels} channels")
    frames = max(int(frames), 0)
    return AudioInfo(frames / sample_rate, int(sample_rate), int(channels), frames, fmt, subtype)


def _mono(block: np.ndarray) -> np.ndarray:
    """Average the channels: float32 ``[frames]`` or ``[frames, channels]`` -> ``[frames]``.

    A matrix-vector product, because ``mean(axis=1)`` over a handful of channels runs one tiny
    reduction per frame and was the slowest step of ingestion.
    """
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




def _check_wav_header(fh: BinaryIO, size: int, info: AudioInfo) -> None:
    """Refuse a WAV whose header declares more frames than the file holds (a lying header)."""
    declared = wav_declared_frames(fh, size) if info.format == "wav" else None
    if declared is not None and declared[1] < declared[0]:
        raise DecodeError(
            f"truncated WAV: header declares {declared[0]} frames "
            f"({declared[0] / info.sample_rate:.2f} s), file holds {declared[1]} "
            f"({declared[1] / info.sample_rate:.2f} s)"
        )
    fh.seek(0)


def _read_blocks(f: sf.SoundFile, budget: int | None) -> Iterator[np.ndarray]:
    """``[n, channels]`` float32 blocks until the stream ends or ``budget`` frames are read.

    Never ``f.read(-1)``: soundfile sizes that array from the header's frame count, so a header
    that lies would choose the allocation. Blocks shrink for many channels (~2 MB each).
    """
    step = max(1, min(BLOCK_FRAMES, BLOCK_FRAMES * 8 // max(f.channels, 1)))
    done = 0
    while budget is None or done < budget:
        block = f.read(step if budget is None else min(step, budget - done),
                       dtype="float32", always_2d=True)
        if len(block) == 0:
            return
        done += len(block)
        yield block


@dataclass
class _Scan:
    """The per-block checks and measurements ingest and query clips share."""

    sample_rate: int
    max_s: float = math.inf
    frames: int = 0
    peak: float = 0.0
    sum_squares: float = 0.0

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def add(self, block: np.ndarray) -> np.ndarray:
        """Refuse NaN/inf samples, account for ``block`` and return its mono mix."""
        if not np.isfinite(block).all():
            raise DecodeError(f"invalid samples: NaN or infinite near {self.seconds:.2f} s")
        mono = _mono(block)
        self.peak = max(self.peak, float(mono.max(initial=0.0)), -float(mono.min(initial=0.0)))
        self.sum_squares += float(np.dot(mono, mono))
        self.frames += len(block)
        if self.seconds > self.max_s:
            raise DecodeError(f"too long: more than {self.max_s:g} s of audio")
        return mono

    def check_complete(self, info: AudioInfo, expected_frames: int) -> None:
        """Refuse a stream that decoded short of what its header promised, or to nothing."""
        if info.frames > 0 and self.frames < expected_frames - _TRUNCATION_SLACK_FRAMES:
            raise DecodeError(
                f"truncated {info.format.upper()}: header declares {info.frames} frames "
                f"({info.duration_s:.2f} s), only {self.frames} decodable ({self.seconds:.2f} s)"
            )
        if self.frames == 0:
            fmt = info.format.upper()
            raise DecodeError(f"no decodable audio in this {fmt} (corrupt or truncated)")

    def check_not_silent(self) -> float:
        """Refuse digital silence (nothing to index or to search by); returns the peak in dB."""
        peak_db = _db(self.peak)
        if peak_db <= SILENCE_PEAK_DBFS:
            raise DecodeError(f"digital silence: peak {peak_db:.1f} dBFS over {self.seconds:.2f} s")
        return peak_db


def _scanned(source: Source, info: AudioInfo, scan: _Scan,
             budget: int | None) -> Iterator[np.ndarray]:
    """Mono blocks of ``source`` (at most ``budget`` frames), each through ``scan``'s checks.

    The one decoding loop behind :func:`validate` and :func:`decode_query_clip`, so an upload
    is refused for exactly the reasons ingest refuses a file.
    """
    with _open_binary(source) as fh:
        _check_wav_header(fh, _size(source), info)
        try:
            with sf.SoundFile(fh if _is_bytes(source) else os.fspath(source)) as f:
                for block in _read_blocks(f, budget):
                    yield scan.add(block)
        except _DECODER_ERRORS as e:
            raise DecodeError(
                f"corrupt or truncated {info.format.upper()}: decoding failed after "
                f"{scan.seconds:.2f} s of {info.duration_s:.2f} s ({_reason(e)})"
            ) from e
    scan.check_complete(info, info.frames if budget is None else min(info.frames, budget))


@contextmanager
def _named(label: str | None) -> Iterator[None]:
    """Prefix refusals with the file's name; turn any other decoder error into a DecodeError.

    The API answers CatalogErrors with a 4xx and anything else with a 500, so the RuntimeError,
    ValueError, OverflowError or MemoryError of a bad file must not escape as what it is.

    Args:
        label: the file's name as the user knows it, or None to leave DecodeErrors unprefixed.
    """
    try:
        yield
    except DecodeError as e:
        if label is None:
            raise
        raise DecodeError(f"{label}: {e}") from e
    except (*_DECODER_ERRORS, MemoryError) as e:
        raise DecodeError(f"{label or 'the file'}: cannot decode ({_reason(e)})") from e


def validate(source: Source, *, min_duration_s: float = 0.0, max_duration_s: float = math.inf,
             filename: str | None = None) -> ValidatedAudio:
    """Decode ``source`` completely (in blocks) and refuse it with a reason if it is unusable.

    Checks, in order: empty, not audio / unsupported format, too long by its header (refused
    before decoding), decode errors and truncation (header frames vs frames decodable),
    NaN/inf samples, too short, too long, digital silence. :func:`decode_query_clip` runs the
    same checks on the part of an upload it decodes.

    Args:
        source: a path or the file's bytes.
        min_duration_s: shortest accepted duration in seconds.
        max_duration_s: longest accepted duration in seconds.
        filename: when given, messages start with it (ingest names the path itself).

    Returns:
        The container info (with the decoded frame count), loudness and peak.

    Raises:
        DecodeError: the message is the human-readable reason.
    """
    with _named(_label(source, filename) if filename else None):
        info = probe(source)
        if info.duration_s > max_duration_s:
            raise DecodeError(f"too long: {info.duration_s:.1f} s (maximum {max_duration_s:g} s)")
        scan = _Scan(info.sample_rate, max_duration_s)
        for _ in _scanned(source, info, scan, None):
            pass
        if scan.seconds < min_duration_s:
            raise DecodeError(f"too short: {scan.seconds:.2f} s (minimum {min_duration_s:g} s)")
        peak_db = scan.check_not_silent()
    return ValidatedAudio(
        info=AudioInfo(scan.seconds, info.sample_rate, info.channels, scan.frames, info.format,
                       info.subtype),
        loudness_db=_db(math.sqrt(scan.sum_squares / scan.frames)),
        peak_db=peak_db,
    )


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample mono float32 audio with soxr's high-quality filter (identity when rates match)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(wave, dtype=np.float32)
    out = soxr.resample(np.asarray(wave, dtype=np.float32), orig_sr, target_sr, quality="HQ")
    return out.astype(np.float32, copy=False)



def decode(source: Source, sample_rate: int | None = None, *, start_s: float | None = None,
           duration_s: float | None = None, max_s: float | None = None,
           filename: str | None = None) -> np.ndarray:
    """Decode ``source`` to mono float32, optionally a crop, optionally resampled.

    For files that :func:`validate` accepted (whole tracks). Reads in blocks and never more
    than asked, so a header cannot choose the allocation; uploads go to
    :func:`decode_query_clip`, which validates as it reads.

    Args:
        source: a path or the file's bytes.
        sample_rate: rate of the result in Hz; None keeps the file's own rate.
        start_s: crop start in seconds (seeks; no decoding of what comes before).
        duration_s: crop length in seconds; None reads to the end.
        max_s: with ``duration_s=None``, refuse a file longer than this (by its header before
            decoding, by what it decodes otherwise) instead of reading all of it.
        filename: the user's name for the file, used only in messages.

    Returns:
        float32 ``[n]`` in [-1, 1] (channels averaged).

    Raises:
        DecodeError: the file cannot be read, the crop lies outside it, or it exceeds ``max_s``.
        ValueError: a negative ``start_s``/``duration_s``, a non-positive ``sample_rate`` or
            ``max_s``.
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    for arg, value in (("start_s", start_s), ("duration_s", duration_s)):
        if value is not None and not 0 <= value < math.inf:
            raise ValueError(f"{arg} must be >= 0 and finite, got {value}")
    if max_s is not None and not max_s > 0:
        raise ValueError(f"max_s must be positive, got {max_s}")
    limit = max_s if duration_s is None else None
    with _named(_label(source, filename)):
        info = probe(source)
        if limit is not None and info.duration_s - (start_s or 0.0) > limit:
            raise DecodeError(f"too long: {info.duration_s:.1f} s (at most {limit:g} s)")
        with _open_binary(source) as fh:
            try:
                with sf.SoundFile(fh) as f:
                    if start_s:
                        start = int(round(start_s * f.samplerate))
                        if info.frames and start >= info.frames:
                            end = info.duration_s
                            raise DecodeError(f"start_s={start_s} is past the end ({end:.2f} s)")
                        f.seek(start)
                    # One frame past max_s proves the file too long, whatever its header says.
                    seconds = duration_s if limit is None else limit
                    budget = None if seconds is None else (
                        int(round(seconds * f.samplerate)) + (limit is not None))
                    blocks = [_mono(b) for b in _read_blocks(f, budget)]
            except _DECODER_ERRORS as e:
                raise DecodeError(f"cannot decode ({_reason(e)})") from e
        mono = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
        if limit is not None and budget is not None and len(mono) >= budget:
            raise DecodeError(f"too long: more than {limit:g} s of audio")
    return resample(mono, info.sample_rate, sample_rate) if sample_rate else mono


def _check_query_header(info: AudioInfo, size: int, max_s: float, max_declared_s: float,
                        max_ratio: float) -> None:
    """Refuse, before any decoding, a header no search clip should have."""
    if info.sample_rate > MAX_QUERY_SAMPLE_RATE:
        raise DecodeError(f"unsupported sample rate {info.sample_rate} Hz "
                          f"(at most {MAX_QUERY_SAMPLE_RATE} Hz)")
    if info.duration_s > max_declared_s:
        raise DecodeError(
            f"too long for a query clip: the header declares {info.duration_s:.0f} s "
            f"(at most {max_declared_s:g} s; only the first {max_s:g} s are used, trim it)"
        )
    pcm_bytes = info.frames * info.channels * 2  # as 16-bit PCM, what codecs are rated against
    if info.duration_s > max_s and pcm_bytes > max_ratio * size:
        raise DecodeError(
            f"refused: the header declares {pcm_bytes / 1e6:.0f} MB of audio in {size} bytes "
            f"({pcm_bytes / size:.0f}:1, at most {max_ratio:g}:1): a corrupt header or a "
            "decompression bomb"
        )


def decode_query_clip(data: bytes, sample_rate: int, *, max_s: float = 30.0,
                      filename: str | None = None,
                      max_declared_s: float = MAX_QUERY_DECLARED_S,
                      max_ratio: float = MAX_QUERY_RATIO) -> np.ndarray:
    """Decode the first ``max_s`` seconds of an uploaded search clip, validated like ingest.

    An upload is untrusted: its header is checked before anything is decoded (sample rate,
    declared length, decompression ratio), at most ``max_s`` seconds are ever read, whatever
    the header claims, and what is read passes :func:`validate`'s checks (lying WAV header,
    truncation, NaN/inf, silence). Memory is bounded by ``max_s`` at the file's rate.

    Args:
        data: the uploaded file's bytes (wav, flac, ogg/vorbis/opus or mp3).
        sample_rate: rate of the result in Hz (the encoder's).
        max_s: seconds decoded from the start; the rest of the file is never read.
        filename: the user's name for the upload, used in messages ("the upload" if None).
        max_declared_s: a header declaring a longer duration is refused, not cropped.
        max_ratio: a header declaring more than this many bytes of 16-bit PCM per byte of
            upload is refused (checked when it declares more than ``max_s``).

    Returns:
        float32 ``[n]``, ``n <= max_s * sample_rate`` (rounded), mono, at ``sample_rate``.

    Raises:
        DecodeError: the reason, naming ``filename`` or "the upload".
        ValueError: a non-positive ``sample_rate`` or ``max_s``.
    """
    if sample_rate <= 0 or not 0 < max_s < math.inf:
        raise ValueError(f"sample_rate and max_s must be positive, got {sample_rate}, {max_s}")
    with _named(_label(data, filename)):
        info = probe(data)
        _check_query_header(info, len(data), max_s, max_declared_s, max_ratio)
        budget = max(1, int(round(max_s * info.sample_rate)))
        out = np.empty(budget, dtype=np.float32)  # the only large allocation: max_s of mono
        scan = _Scan(info.sample_rate)
        for mono in _scanned(data, info, scan, budget):
            out[scan.frames - len(mono):scan.frames] = mono
        scan.check_not_silent()
    return resample(out[:scan.frames], info.sample_rate, sample_rate)
