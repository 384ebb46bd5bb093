"""The content-addressed audio store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from index.errors import CatalogError
from index.store import AudioStore, hash_file


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    src.write_bytes(b"RIFF" + bytes(range(256)) * 10_000)
    digest = hash_file(src)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    store = AudioStore(tmp_path / "store")
    rel = store.put(src, digest, "wav")
    assert rel == f"{digest[:2]}/{digest[2:4]}/{digest}.wav"
    assert store.exists(rel) and store.path_for(rel).read_bytes() == src.read_bytes()
    assert store.put(src, digest, ".WAV") == rel  # reused, same name
    leftovers = [p for p in store.path_for(rel).parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []
    assert store.remove(rel) and not store.exists(rel) and not store.remove(rel)


def test_bad_names_are_refused(tmp_path: Path) -> None:
    store = AudioStore(tmp_path)
    with pytest.raises(ValueError, match="content_hash"):
        store.relative_path("../etc", "wav")
    with pytest.raises(ValueError, match="ext"):
        store.relative_path("a" * 64, "w/v")
    with pytest.raises(CatalogError, match="escapes"):
        store.path_for("../../outside.wav")
