"""Persistence of an index: the index file, the JSON manifest beside it, and the atomic swap.

An index on disk is a cache of the database's ``embeddings`` rows, so the manifest records what
the cache was built from (encoder id, dimension, count, factory and a database *watermark*);
:func:`index.vectors.sync.open_index` compares it with the database at start.

The manifest names its index file, so swapping the manifest in is the commit: the index goes
to a fresh uniquely named file first, then the manifest is replaced with ``os.replace``. A
reader therefore sees either the old pair or the new pair, never a half-written index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss

from index.errors import IndexFileError
from index.store import atomic_file, fsync_dir

if TYPE_CHECKING:
    from index.vectors.faiss_index import VectorIndex

log = logging.getLogger(__name__)

# 2: the manifest carries the sha256 of its index file. Version 1 manifests (no checksum) still
# load, as *unverified*: the vector sanity check still runs on them, and ``open`` re-saves them
# as version 2 at once. Rebuilding them instead would make the upgrade cost a full rebuild of
# every large (HNSW, IVF) index at the first start, for files that are almost always fine.
MANIFEST_VERSION = 2
_INDEX_FILE_RE = re.compile(r"^[A-Za-z0-9._-]+\.faiss$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass
class Watermark:
    """What the database held for one encoder when the index was last in sync with it.

    ``max_embedding_id`` finds new rows cheaply (``id > watermark``); ``count`` catches
    deletions, which leave no trace in the maximum.
    """

    max_embedding_id: int = 0
    count: int = 0


@dataclass
class Manifest:
    """The JSON written beside each index file; it names the file, so swapping it is the commit.

    ``checksum`` is the sha256 of the index file; ``None`` in version 1 manifests, which
    predate it, so such an index is served *unverified* (see ``MANIFEST_VERSION``).
    """

    encoder_id: str
    dim: int
    count: int
    factory: str
    watermark: Watermark
    index_file: str
    tombstones: list[int] = field(default_factory=list)
    faiss_version: str = faiss.__version__
    saved_at: float = 0.0
    version: int = MANIFEST_VERSION
    checksum: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """A manifest from its parsed JSON, refusing anything that is not what ``save`` writes.

        A manifest is read before anything else on disk and names the file to open (and later
        delete), so every field is checked here: a hand-edited or damaged one must lead to a
        rebuild, never to a crash deep inside FAISS or to deleting a file outside the folder.

        Raises:
            ValueError: a missing, extra or ill-typed field, named with its value.
        """
        if not isinstance(data, dict) or not isinstance(data.get("watermark"), dict):
            raise ValueError(f"not a manifest object: {str(data)[:80]!r}")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"unknown manifest fields {unknown}")
        wm = data["watermark"]
        if set(wm) != {"max_embedding_id", "count"} or not all(_is_int(v) for v in wm.values()):
            raise ValueError(f"bad watermark {wm!r}")
        manifest = cls(**{**data, "watermark": Watermark(**wm)})
        manifest._validate()
        return manifest

    def _validate(self) -> None:
        checks = {
            "encoder_id": isinstance(self.encoder_id, str),
            "dim": _is_int(self.dim) and self.dim > 0,
            "count": _is_int(self.count) and self.count >= 0,
            "factory": isinstance(self.factory, str),
            "index_file": isinstance(self.index_file, str)
            and bool(_INDEX_FILE_RE.match(self.index_file)),
            "tombstones": isinstance(self.tombstones, list)
            and all(_is_int(t) for t in self.tombstones),
            "version": _is_int(self.version) and 1 <= self.version <= MANIFEST_VERSION,
            "checksum": self.checksum is None
            or (isinstance(self.checksum, str) and bool(_SHA256_RE.match(self.checksum))),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"bad manifest field {name}={getattr(self, name)!r}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _safe_name(encoder_id: str) -> str:
    """A file name for an encoder id (ids may contain ``/``, ``@``, ``:``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)


def manifest_path(directory: Path | str, encoder_id: str) -> Path:
    """Where the manifest of ``encoder_id``'s index lives in ``directory``."""
    return Path(directory) / f"{_safe_name(encoder_id)}.json"


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, streamed in 1 MiB chunks (index files reach gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``; ``None`` when there is none.

    Raises:
        IndexFileError: it exists but cannot be read or is not a valid manifest.
    """
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise IndexFileError(path, f"manifest unreadable ({e})") from e


# ---------------------------------------------------------------------- writing


def save_pair(directory: Path | str, index: faiss.Index, manifest: Manifest) -> Path:
    """Write ``index`` and ``manifest`` (``index_file`` and ``checksum`` filled in) atomically.

    On any failure the files this call created are removed and the previous pair is left as it
    was, so a failed save costs nothing but the save.

    Returns:
        The manifest path.

    Raises:
        OSError, RuntimeError: the folder or a file could not be written (FAISS raises
            ``RuntimeError`` for its own I/O).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = manifest_path(directory, manifest.encoder_id)
    old_file = _current_index_file(path)
    index_file = f"{path.stem}.{time.time_ns()}.faiss"
    tmp = directory / f".{index_file}.tmp"
    try:
        faiss.write_index(index, str(tmp))
        _fsync(tmp)
        manifest.checksum = file_sha256(tmp)
        os.replace(tmp, directory / index_file)
        manifest.index_file = index_file
        manifest.version = MANIFEST_VERSION
        _write_json(path, asdict(manifest))
    except BaseException:
        tmp.unlink(missing_ok=True)
        (directory / index_file).unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    if old_file is not None and old_file != index_file:
        try:
            (directory / old_file).unlink(missing_ok=True)
        except OSError as e:  # the new pair is committed; a stale file only costs disk
            log.warning("old index file %s not removed (%s)", directory / old_file, e)
    return path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then swap it in."""
    with atomic_file(path, prefix=f".{path.stem}.", suffix=".json") as f:
        f.write(json.dumps(data, indent=1).encode())


def _current_index_file(path: Path) -> str | None:
    """The index file the manifest at ``path`` names now, to delete once it is replaced."""
    try:
        old = read_manifest(path)
    except IndexFileError:
        return None
    return old.index_file if old is not None else None


def persist(index: VectorIndex, directory: Path | str,
            watermark: Watermark | None = None) -> bool:
    """Save ``index`` if possible; on failure log one warning and return False.

    What a caller needs after a database write that is already committed: the database is the
    source of truth, and the next :func:`index.vectors.sync.open_index` catches the saved index
    up from it, so a full disk or a read-only folder must not turn that write into an error.
    """
    try:
        index.save(directory, watermark)
    except (OSError, RuntimeError) as e:
        log.warning("index %s not saved in %s (%s: %s); serving it from memory, the next start "
                    "catches up from the database", index.encoder_id, directory,
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return False
    return True


# ---------------------------------------------------------------------- reading


def read_pair(directory: Path | str, encoder_id: str) -> tuple[Manifest, faiss.Index] | None:
    """The saved manifest and FAISS index of ``encoder_id``, checked against each other.

    The checksum is verified *before* FAISS parses the file: FAISS trusts the sizes it reads,
    so a damaged file can make it allocate wildly or load garbage vectors (scores of 1e24).

    Returns:
        ``None`` when no index is saved for this encoder id.

    Raises:
        IndexFileError: the manifest or the index file is unreadable, damaged or inconsistent.
    """
    directory = Path(directory)
    manifest = read_manifest(manifest_path(directory, encoder_id))
    if manifest is None:
        return None
    if manifest.encoder_id != encoder_id:  # another id with the same safe file name
        log.info("index %s belongs to encoder %r, not %r", manifest_path(directory, encoder_id),
                 manifest.encoder_id, encoder_id)
        return None
    path = directory / manifest.index_file
    if manifest.checksum is not None:
        try:
            actual = file_sha256(path)
        except OSError as e:
            raise IndexFileError(path, f"index file unreadable ({e})") from e
        if actual != manifest.checksum:
            raise IndexFileError(path, "damaged (checksum mismatch)")
    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError, OSError) as e:
        raise IndexFileError(path, f"index file unreadable ({str(e).splitlines()[0]})") from e
    # read_index already returns the concrete type; downcasting it again would hand back a
    # non-owning wrapper of an index freed with ``index`` (garbage dimensions, then a crash).
    if not isinstance(index, faiss.IndexIDMap2) or index.d != manifest.dim:
        raise IndexFileError(path, f"holds a {type(index).__name__} of dimension {index.d}, "
                                   f"the manifest says IDMap2 of dimension {manifest.dim}")
    return manifest, index


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
