"""Sniffing container bytes before libsndfile sees them: magic numbers and WAV chunk sizes.

Kept apart from :mod:`index.audio` because it is pure byte parsing (no decoding) and runs on
untrusted uploads first: it must be cheap and bounded whatever the bytes are.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

_NON_AUDIO_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"MThd", "a MIDI file (render it to audio first)"),
)


def describe_non_audio(head: bytes) -> str | None:
    """Name what a file obviously is when it is not audio, so the reason is actionable."""
    for signature, what in _NON_AUDIO_SIGNATURES:
        if head.startswith(signature):
            return what
    sample = head[:512]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "a text file"
    return None


def looks_like_audio(head: bytes) -> bool:
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


def wav_declared_frames(fh: BinaryIO, size: int) -> tuple[int, int] | None:
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
    for _ in range(1024):  # a file of a million tiny chunks must not keep Python looping
        if offset + 8 > size:
            break
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
