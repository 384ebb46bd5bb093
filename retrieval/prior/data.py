"""The prior's data: a rendered catalog's captions and audio, embedded once and cached.

A catalog folder holds ``metadata.jsonl`` (rows with ``path``, ``split``, ``captions`` and the
metadata the evaluation groups by) and the audio files. The audio embeddings are *whole-track*
embeddings, exactly what the index holds: the prior must sample where the catalog's vectors
live. When the catalog database already stores them (``stored``: content hash -> vector, read
through :func:`index.vectors.load_embeddings`), they are reused instead of decoding the files
again. Embeddings are cached in ``<cache_dir>/<encoder id>.npz``; the audio part is reused as
long as the encoder id (which names its exact weights) and the files are the same, the caption
part as long as the caption texts are.

Captions: the catalog ships three or four per track. The prior learns ``p(audio | text)`` from
them, and three captions per track teach it little about short or partial requests ("a jig",
"something slow on the harp"), which are exactly the broad queries it exists for. So
``extra_captions`` draws more captions per row from the row's facts with the *training* caption
generator (:func:`retrieval.captions.training_captions`); the evaluation-only paraphrase
templates are never used for training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
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


def concat_pairs(catalogs: Sequence[EmbeddedCatalog], split: str, captions_per_track: int = 4) -> Pairs:
    """One split's pairs from several catalogs, in order.

    E.g. the demo catalog and extra renders of its training pieces.

    Raises:
        RetrievalError: no catalogs.
    """
    parts = [c.pairs(split, captions_per_track) for c in catalogs]
    if not parts:
        raise RetrievalError("no catalogs to take pairs from")
    return Pairs(text=np.concatenate([p.text for p in parts]),
                 audio=np.concatenate([p.audio for p in parts]))


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
    """The cache file of ``encoder_id``'s catalog embeddings, its id made safe as a file name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id.replace("@", "_"))
    return Path(cache_dir) / f"{safe}.npz"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def row_captions(row: Mapping[str, Any], extra: int = 0) -> list[str]:
    """The row's shipped captions, then up to ``extra`` more drawn from its facts.

    The extra captions come from the training caption generator, seeded by the row's path, so
    they are the same on every run; duplicates of shipped captions are dropped.
    """
    shipped = list(row.get("captions") or [])
    if extra <= 0:
        return shipped
    from retrieval.captions import facts_from_row, training_captions

    seed = int(hashlib.sha256(str(row.get("path")).encode()).hexdigest()[:8], 16)
    fresh = training_captions(facts_from_row(row), len(shipped) + extra, seed)
    return shipped + [c for c in fresh if c not in shipped][:extra]


def _crop(duration_s: float | None, crop_s: float | None) -> dict[str, float]:
    if not crop_s or not duration_s or duration_s <= crop_s:
        return {}
    return {"start_s": (duration_s - crop_s) / 2, "duration_s": crop_s}


def _cached(path: Path, encoder_id: str, audio_fp: str, caption_fp: str
            ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(audio, captions)`` from the cache file, each None unless its fingerprint matches.

    The two parts are checked apart so that drawing more captions re-embeds only captions.
    """
    audio: np.ndarray | None = None
    captions: np.ndarray | None = None
    if path.is_file():
        z = np.load(path)
        if str(z["encoder_id"]) == encoder_id and "audio_fp" in z.files:
            if str(z["audio_fp"]) == audio_fp:
                audio = z["audio"]
            if str(z["caption_fp"]) == caption_fp:
                captions = z["captions"]
    return audio, captions


def _embed_audio(encoder: Encoder, root: Path, rows: Sequence[Mapping[str, Any]], batch_size: int,
                 crop_s: float | None, stored: Mapping[str, np.ndarray] | None,
                 progress: Callable[[int, int], None] | None) -> np.ndarray:
    """Audio embeddings ``[len(rows), dim]``: stored vectors where given, else decoded files.

    Args:
        encoder: the encoder.
        root: the catalog folder the rows' paths are relative to.
        rows: the catalog rows.
        batch_size: tracks decoded and embedded at a time.
        crop_s: embed only the middle ``crop_s`` seconds (None: whole tracks).
        stored: content hash -> whole-track embedding (None: decode every file).
        progress: called as ``progress(done, total)`` over the decoded files.
    """
    from index.audio import decode

    audio = np.zeros((len(rows), encoder.dim), np.float32)
    todo = list(range(len(rows)))
    if stored:
        from index.store import hash_file

        found = {i: stored.get(hash_file(root / r["path"])) for i, r in enumerate(rows)}
        for i, v in found.items():
            if v is not None:
                audio[i] = v
        todo = [i for i, v in found.items() if v is None]
    for s in range(0, len(todo), batch_size):
        chunk = todo[s:s + batch_size]
        waves = [decode(root / rows[i]["path"], sample_rate=encoder.sample_rate,
                        **_crop(rows[i].get("duration_s"), crop_s)) for i in chunk]
        audio[chunk] = encoder.embed_audio(waves)
        if progress is not None:
            progress(s + len(chunk), len(todo))
    return audio


def embed_catalog(encoder: Encoder, catalog_dir: str | Path, cache_dir: str | Path, *,
                  batch_size: int = 16, crop_s: float | None = None, extra_captions: int = 0,
                  stored: Mapping[str, np.ndarray] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> EmbeddedCatalog:
    """Embed every row's audio and captions (or load them from the cache).

    Args:
        encoder: any :class:`~retrieval.encoders.base.Encoder`.
        catalog_dir: the folder with ``metadata.jsonl``.
        cache_dir: where ``<encoder id>.npz`` is kept.
        batch_size: tracks decoded and embedded at a time.
        crop_s: embed only the middle ``crop_s`` seconds of each track (None: whole tracks,
            the default, as in the index). A crop is cheaper but samples a slightly different
            distribution than the one the prior's seeds are searched against.
        extra_captions: captions drawn per row on top of the shipped ones (see the module doc).
        stored: content hash (sha256 of the file) -> stored whole-track embedding of this
            encoder; rows found there are not decoded again. Ignored with ``crop_s``.
        progress: called as ``progress(done, total)`` after each audio batch.
    """
    root = Path(catalog_dir)
    rows = load_rows(root)
    texts_per_row = [row_captions(r, extra_captions) for r in rows]
    audio_fp = _digest("\n".join(r["path"] for r in rows) + (f"|crop{crop_s:g}" if crop_s else ""))
    caption_fp = _digest("\n".join("|".join(t) for t in texts_per_row))
    path = cache_path(cache_dir, encoder.id)
    owner = np.array([i for i, t in enumerate(texts_per_row) for _ in t], np.int64)
    rank = np.array([j for t in texts_per_row for j in range(len(t))], np.int64)
    audio, captions = _cached(path, encoder.id, audio_fp, caption_fp)
    if audio is not None and captions is not None:
        return EmbeddedCatalog(rows, audio, captions, owner, rank, encoder.id)
    if audio is None:
        audio = _embed_audio(encoder, root, rows, batch_size, crop_s,
                             None if crop_s else stored, progress)
    if captions is None:
        texts = [c for t in texts_per_row for c in t]
        captions = encoder.embed_text(texts).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, audio=audio, captions=captions, audio_fp=audio_fp, caption_fp=caption_fp,
             encoder_id=encoder.id)
    tmp.replace(path)
    return EmbeddedCatalog(rows, audio, captions, owner, rank, encoder.id)


def stored_embeddings(database_url: str, encoder_id: str, dim: int) -> dict[str, np.ndarray]:
    """Content hash -> whole-track embedding of ``encoder_id`` from a catalog database.

    Empty when the database has none (or does not exist yet): the caller then embeds the files.
    """
    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from index.db import open_catalog, session_scope
    from index.models import Track
    from index.vectors import load_embeddings

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return {}  # do not create an empty catalog as a side effect
    try:
        factory = open_catalog(database_url)
    except Exception:  # noqa: BLE001 - no usable database means "nothing stored", not a failure
        return {}
    with session_scope(factory) as session:
        ids, vecs = load_embeddings(session, encoder_id, dim)
        if not len(ids):
            return {}
        hashes = {tid: h for tid, h in session.execute(select(Track.id, Track.content_hash))}
    return {hashes[int(t)]: v for t, v in zip(ids, vecs, strict=True) if int(t) in hashes}
