"""Persistence of an index: the index file, the JSON manifest beside it, and the atomic swap.

An index on disk is a cache of the database's ``embeddings`` rows, so the manifest records what
the cache was built from (encoder id, dimension, count, factory and a database *watermark*);
:func:`index.vectors.sync.open_index` compares it with the database at start.

The manifest names its index file, so swapping the manifest in is the commit: the index goes
to a fresh uniquely named file first, then the manifest is replaced with ``os.replace``. A
reader therefore sees either the old pair or the new pair, never a half-written index.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1


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
    """The JSON written beside each index file; it names the file, so swapping it is the commit."""

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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["watermark"] = Watermark(**data["watermark"])
        return cls(**data)


def _safe_name(encoder_id: str) -> str:
    """A file name for an encoder id (ids may contain ``/``, ``@``, ``:``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)


def manifest_path(directory: Path | str, encoder_id: str) -> Path:
    """Where the manifest of ``encoder_id``'s index lives in ``directory``."""
    return Path(directory) / f"{_safe_name(encoder_id)}.json"


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``; ``None`` when there is none or it is unreadable (logged)."""
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as e:
        log.warning("manifest %s unreadable (%s); the index will be rebuilt", path, e)
        return None


def save_pair(directory: Path | str, index: faiss.Index, manifest: Manifest) -> Path:
    """Write ``index`` and ``manifest`` (its ``index_file`` is filled in) atomically.

    Returns:
        The manifest path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = manifest_path(directory, manifest.encoder_id)
    name = path.stem
    old = read_manifest(path)
    index_file = f"{name}.{time.time_ns()}.faiss"
    tmp = directory / f".{index_file}.tmp"
    faiss.write_index(index, str(tmp))
    _fsync(tmp)
    os.replace(tmp, directory / index_file)
    manifest.index_file = index_file
    fd, tmp_manifest = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(manifest), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_manifest, path)
    if old is not None and old.index_file != index_file:
        (directory / old.index_file).unlink(missing_ok=True)
    return path


def read_pair(directory: Path | str, encoder_id: str) -> tuple[Manifest, faiss.Index] | None:
    """The saved manifest and FAISS index of ``encoder_id``; ``None`` when absent or unusable."""
    directory = Path(directory)
    manifest = read_manifest(manifest_path(directory, encoder_id))
    if manifest is None or manifest.encoder_id != encoder_id:
        return None
    try:
        index = faiss.read_index(str(directory / manifest.index_file))
    except RuntimeError as e:
        log.warning("index file %s unreadable (%s); it will be rebuilt", manifest.index_file, e)
        return None
    if index.d != manifest.dim or not isinstance(index, faiss.IndexIDMap2):
        index = faiss.downcast_index(index)
        if index.d != manifest.dim or not isinstance(index, faiss.IndexIDMap2):
            return None
    return manifest, index


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
