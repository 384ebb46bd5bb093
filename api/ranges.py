"""HTTP Range (RFC 9110, one byte range) for the audio endpoint, so players can seek."""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, Response
from fastapi.responses import FileResponse


def ranged_file(path: Path, ctype: str, range_header: str | None) -> Response:
    """The whole file (200) or the requested byte range (206).

    Only an absent header means the whole file: a present but empty or malformed one is our
    416 (``FileResponse`` would otherwise parse it itself and answer in plain text).
    """
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes"}
    if range_header is None:
        return FileResponse(path, media_type=ctype, headers=headers)
    start, end = parse_range(range_header, size)
    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(body, status_code=206, media_type=ctype, headers=headers)


def parse_range(header: str, size: int) -> tuple[int, int]:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` to inclusive offsets; one range only.

    Raises:
        HTTPException: 416 for anything else, with the ``Content-Range: bytes */size`` header.
    """
    unit, _, spec = header.partition("=")
    bad = HTTPException(416, f"unsatisfiable Range {header!r} for {size} bytes",
                        headers={"Content-Range": f"bytes */{size}"})
    if unit.strip().lower() != "bytes" or "," in spec:
        raise bad
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise bad
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise bad from None
    if start < 0 or start >= size or end < start:
        raise bad
    return start, min(end, size - 1)
