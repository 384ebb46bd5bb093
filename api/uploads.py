"""Reading uploaded files: size limits, safe names, and the query clip of search by audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import HTTPException, UploadFile

from index.audio import decode_query_clip
from retrieval.search import InvalidQueryError

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_QUERY_CLIP_S = 30.0  # a longer query clip is cropped: the encoder pools windows anyway
# 30 s of 48 kHz stereo 24-bit WAV is 8.6 MB: a query clip never needs the room of a track, and
# refusing a bigger body from its Content-Length costs nothing (an hour of MP3 is 14 MB).
MAX_QUERY_UPLOAD_BYTES = 10 * 1024 * 1024


def read_upload(file: UploadFile, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The upload's bytes, refusing empty files and anything over ``limit`` bytes.

    Raises:
        HTTPException: 413 (too large) or 422 (empty).
    """
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload {safe_filename(file.filename)!r} is larger than "
                                 f"{limit // 2**20} MiB")
    if not data:
        raise HTTPException(422, f"upload {safe_filename(file.filename)!r} is empty")
    return data


def read_query_clip(file: UploadFile, sample_rate: int) -> np.ndarray:
    """The uploaded clip as mono float32 at ``sample_rate``, at most :data:`MAX_QUERY_CLIP_S`.

    The clip goes through the same checks as an ingested file (a header that lies about the
    length, NaN/inf samples, silence), and only what is used is decoded: the declared length
    and the decompression ratio are checked from the header first, so an hour of silent FLAC
    (657 KB on the wire, 1.4 GB decoded) is refused before a sample is read.

    Raises:
        HTTPException: the upload is empty or too large.
        DecodeError: the bytes are not audio we accept as a query.
        InvalidQueryError: the clip holds no samples.
    """
    data = read_upload(file, MAX_QUERY_UPLOAD_BYTES)
    wave = decode_query_clip(data, sample_rate, max_s=MAX_QUERY_CLIP_S,
                             filename=safe_filename(file.filename))
    if wave.size == 0:
        raise InvalidQueryError(f"the clip {safe_filename(file.filename)!r} holds no samples")
    return wave


def safe_filename(name: str | None) -> str:
    """A file name that cannot climb out of a directory or carry control characters."""
    stem = Path(name or "upload").name
    stem = "".join(c if c.isalnum() or c in "._- " else "_" for c in stem).strip() or "upload"
    return stem[:200]
