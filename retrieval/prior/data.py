"""The prior's data: a rendered catalog's captions and audio, embedded once and cached.

A catalog folder holds ``metadata.jsonl`` (rows with ``path``, ``split``, ``captions`` and the
metadata the evaluation groups by) and the audio files. Embedding 1,500 tracks takes minutes on
a CPU, so the embeddings are cached in ``<cache_dir>/<encoder id>.npz`` and reused as long as
the encoder id (which names its exact weights) and the list of files are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders.base import Encoder
from retrieval.errors import RetrievalError
from retrieval.prior.training import Pairs

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class EmbeddedCatalog:
    """A catalog's rows with their embeddings.

    Attributes:
        rows: the metadata rows, in file order.
        audio: float32 ``[N, dim]``, unit rows, row ``i`` embeds ``rows[i]``'s audio.
        captions: float32 ``[M, dim]``, unit rows: every caption of every row.
        caption_owner: int64 ``[M]``, the row each caption describes.
        caption_rank: int64 ``[M]``, the caption's position in its row's list.
        encoder_id: the encoder that made them.
    """

    rows: list[dict[str, Any]]
    audio: np.ndarray
    captions: np.ndarray
    caption_owner: np.ndarray
    caption_rank: np.ndarray
    encoder_id: str

    def split_rows(self, split: str) -> np.ndarray:
        """Row indices ``[n]`` of one split."""
        if split not in SPLITS:
            raise RetrievalError(f"unknown split {split!r}; use one of {SPLITS}")
        return np.array([i for i, r in enumerate(self.rows) if r.get("split") == split],
                        np.int64)

    def pairs(self, split: str, captions_per_track: int = 4) -> Pairs:
        """(caption, audio) pairs of a split, up to ``captions_per_track`` captions per track."""
        keep = np.isin(self.caption_owner, self.split_rows(split)) & (
            self.caption_rank < captions_per_track)
        return Pairs(text=self.captions[keep], audio=self.audio[self.caption_owner[keep]])


def load_rows(catalog_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``<catalog_dir>/metadata.jsonl`` whose audio file exists."""
    root = Path(catalog_dir)
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise RetrievalError(f"no metadata.jsonl in {root}; `tunescope demo-catalog --out "
                             f"{root}` renders the demo catalog")
    rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
    return [r for r in rows if (root / r["path"]).is_file()]


def cache_path(cache_dir: str | Path, encoder_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id.replace("@", "_"))
    return Path(cache_dir) / f"{safe}.npz"


def _fingerprint(rows: list[dict[str, Any]]) -> str:
    text = "\n".join(f"{r['path']}|{'|'.join(r.get('captions', []))}" for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _crop(duration_s: float | None, crop_s: float | None) -> dict[str, float]:
    if not crop_s or not duration_s or duration_s <= crop_s:
        return {}
    return {"start_s": (duration_s - crop_s) / 2, "duration_s": crop_s}


def embed_catalog(encoder: Encoder, catalog_dir: str | Path, cache_dir: str | Path, *,
                  batch_size: int = 16, crop_s: float | None = None,
                  progress: Callable[[int, int], None] | None = None) -> EmbeddedCatalog:
    """Embed every row's audio and captions (or load them from the cache).

    Args:
        encoder: any :class:`~retrieval.encoders.base.Encoder`.
        catalog_dir: the folder with ``metadata.jsonl``.
        cache_dir: where ``<encoder id>.npz`` is kept.
        batch_size: tracks decoded and embedded at a time.
        crop_s: embed only the middle ``crop_s`` seconds of each track (None: whole tracks).
            One 10 s window costs a quarter of a 25 s track's four overlapping windows: the
            way to build the data on a busy CPU, at the price of embeddings that differ
            slightly from the whole-track ones in the index.
        progress: called as ``progress(done, total)`` after each audio batch.
    """
    from index.audio import decode

    root = Path(catalog_dir)
    rows = load_rows(root)
    fp = _fingerprint(rows) + (f"|crop{crop_s:g}" if crop_s else "")
    path = cache_path(cache_dir, encoder.id)
    owner = np.array([i for i, r in enumerate(rows) for _ in r.get("captions", [])], np.int64)
    rank = np.array([j for r in rows for j in range(len(r.get("captions", [])))], np.int64)
    if path.is_file():
        z = np.load(path)
        if str(z["fingerprint"]) == fp and str(z["encoder_id"]) == encoder.id:
            return EmbeddedCatalog(rows, z["audio"], z["captions"], owner, rank, encoder.id)
    audio = np.zeros((len(rows), encoder.dim), np.float32)
    for s in range(0, len(rows), batch_size):
        chunk = rows[s:s + batch_size]
        waves = [decode(root / r["path"], sample_rate=encoder.sample_rate,
                        **_crop(r.get("duration_s"), crop_s)) for r in chunk]
        audio[s:s + len(chunk)] = encoder.embed_audio(waves)
        if progress is not None:
            progress(s + len(chunk), len(rows))
    texts = [c for r in rows for c in r.get("captions", [])]
    captions = encoder.embed_text(texts).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, audio=audio, captions=captions, fingerprint=fp, encoder_id=encoder.id)
    tmp.replace(path)
    return EmbeddedCatalog(rows, audio, captions, owner, rank, encoder.id)
