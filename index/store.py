"""Content-addressed audio store: the audio files the catalog serves, named by their sha256.

Addressing by content makes ingestion idempotent: the same bytes always land at the same path,
so a re-run after a crash reuses what an interrupted run already copied, and a file in the
store without a catalog row is harmless (it is simply overwritten or reused).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from index.errors import CatalogError

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,8}$")
_CHUNK = 1 << 20


def hash_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_file(dest: Path, prefix: str, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Write ``dest`` all or nothing: a temporary file beside it, fsynced, then ``os.replace``.

    A reader (or a crash) sees the old file or the new one, never half of one; on any failure
    the temporary file is removed and ``dest`` is left as it was.
    """
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    """Make the renames inside ``path`` durable (best effort: the rename itself is atomic)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AudioStore:
    """Files under ``root`` at ``ab/cd/<sha256>.<ext>``.

    The two directory levels keep any one folder to a few thousand entries even for catalogs of
    millions of tracks. Paths handed out are relative to ``root`` (that is what the database
    stores), so the store can move with ``TUNESCOPE_HOME``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @staticmethod
    def relative_path(content_hash: str, ext: str) -> str:
        """Where the file with this hash and extension lives, relative to the root."""
        if not _HASH_RE.match(content_hash):
            raise ValueError(f"content_hash must be 64 lowercase hex digits, got {content_hash!r}")
        ext = ext.lower().lstrip(".")
        if not _EXT_RE.match(ext):
            raise ValueError(f"ext must be 1-8 letters or digits, got {ext!r}")
        return f"{content_hash[:2]}/{content_hash[2:4]}/{content_hash}.{ext}"

    def path_for(self, rel: str) -> Path:
        """Absolute path of a stored file; refuses paths that would escape the root."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise CatalogError(f"audio path {rel!r} escapes the store root {self.root}")
        return path

    def exists(self, rel: str) -> bool:
        """True when the stored file is present."""
        return self.path_for(rel).is_file()

    def put(self, src_path: str | os.PathLike[str], content_hash: str, ext: str) -> str:
        """Copy ``src_path`` into the store, atomically; return its relative path.

        The copy goes to a temporary file in the destination folder, is fsynced, then renamed
        over the final name with ``os.replace``: a reader (or a crash) never sees half a file.
        An existing file of the right size is reused without copying. The caller vouches that
        ``content_hash`` is the sha256 of ``src_path`` (ingestion has just computed it).
        """
        rel = self.relative_path(content_hash, ext)
        dest = self.path_for(rel)
        src = Path(src_path)
        if dest.is_file() and dest.stat().st_size == src.stat().st_size:
            return rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dest, prefix=f".{content_hash[:16]}.") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, _CHUNK)
        fsync_dir(dest.parent)
        return rel

    def put_bytes(self, data: bytes, ext: str) -> tuple[str, str]:
        """Store ``data`` atomically under its own sha256; return ``(content_hash, rel_path)``.

        The in-memory twin of :meth:`put`, for audio that never was a file (a generated
        candidate). Same guarantees: temporary file, fsync, ``os.replace``; an existing file of
        the right size is reused.
        """
        content_hash = hashlib.sha256(data).hexdigest()
        rel = self.relative_path(content_hash, ext)
        dest = self.path_for(rel)
        if dest.is_file() and dest.stat().st_size == len(data):
            return content_hash, rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(dest, prefix=f".{content_hash[:16]}.") as out:
            out.write(data)
        fsync_dir(dest.parent)
        return content_hash, rel

    def remove(self, rel: str) -> bool:
        """Delete a stored file; return whether it was there."""
        path = self.path_for(rel)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
