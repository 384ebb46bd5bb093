"""The novelty gate: a candidate must be new both as a sound and as a melody.

Two checks, both cheap enough to run on every candidate of every job:

- **Melodic copy** (:class:`NgramIndex`): every run of ``n`` = 12 consecutive
  (interval, inter-onset time) pairs of every melodic line of the corpus the demo catalog is
  built from, hashed to 64 bits and kept as one sorted ``uint64`` array (8 bytes per n-gram,
  saved as ``.npy``). Intervals make it transposition-invariant, inter-onset times (in quarter
  notes) make it tempo-invariant. A candidate's windows are hashed the same way and looked up
  with one vectorised binary search: microseconds for a tune.
- **Acoustic copy** (:func:`embedding_gate`): the candidate's embedding must not sit closer to
  any catalog track than pairs of *different works* of the catalog usually do
  (:func:`different_work_threshold`: their 99th percentile of cosine similarity). Renders of
  one work are near-duplicates by design, so they must not set the bar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from generation.errors import GenerationError
from generation.symbolic.corpus import Source, corpus_root, list_sources
from generation.symbolic.render import Events, load_score, score_to_events
from index.models import Track

#: The gate's run length: 12 (interval, duration) pairs, i.e. 13 notes.
DEFAULT_N = 12
#: Inter-onset times are quantised to 1/48 of a quarter note (exact for 32nds and triplets).
_TICKS_PER_QL = 48
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the polynomial hash
_FORMAT_VERSION = 1

Notes = Events | tuple[np.ndarray, np.ndarray]


# ------------------------------------------------------------------------------ hashing

def melodic_lines(ev: Events) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each voice of ``ev`` as a monophonic line: ``(pitch [m], onset_ql [m])``.

    Where a voice sounds several notes at once (a chord, divisi) its top note is the line
    (the "skyline"), which is what a listener follows and what a copy would reproduce.
    """
    lines = []
    for v in np.unique(ev.voice):
        mask = ev.voice == v
        onset = np.round(ev.onset[mask] * _TICKS_PER_QL).astype(np.int64)
        pitch = ev.pitch[mask].astype(np.int64)
        order = np.lexsort((-pitch, onset))  # by onset, highest pitch first
        onset, pitch = onset[order], pitch[order]
        first = np.ones(len(onset), bool)
        first[1:] = onset[1:] != onset[:-1]
        lines.append((pitch[first], onset[first].astype(np.float64) / _TICKS_PER_QL))
    return lines


def line_tokens(pitch: np.ndarray, onset_ql: np.ndarray) -> np.ndarray:
    """One ``uint64`` token per consecutive note pair: (interval, inter-onset ticks).

    Args:
        pitch: ``[m]`` MIDI pitches of a monophonic line, in time order.
        onset_ql: ``[m]`` onsets in quarter notes.

    Returns:
        ``[m - 1]`` tokens (empty for fewer than two notes).
    """
    p = np.asarray(pitch, np.int64)
    ticks = np.round(np.asarray(onset_ql, np.float64) * _TICKS_PER_QL).astype(np.int64)
    if len(p) < 2:
        return np.zeros(0, np.uint64)
    interval = np.clip(np.diff(p), -127, 127) + 128
    ioi = np.clip(np.diff(ticks), 0, (1 << 24) - 1)
    return ((interval << 24) | ioi).astype(np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial hash over all 64 bits."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _powers(n: int) -> np.ndarray:
    """``[M**(n-1), ..., M, 1]`` modulo 2**64: Horner's rule as one dot product per window."""
    p = np.ones(n, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n - 2, -1, -1):
            p[k] = p[k + 1] * _MULT
    return p


_POWERS = {DEFAULT_N: _powers(DEFAULT_N)}


def window_hashes(tokens: np.ndarray, n: int = DEFAULT_N) -> np.ndarray:
    """The 64-bit hash of every run of ``n`` consecutive tokens: ``[len(tokens) - n + 1]``."""
    m = len(tokens) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64)
    powers = _POWERS.get(n)
    if powers is None:
        powers = _POWERS.setdefault(n, _powers(n))
    tokens = np.ascontiguousarray(tokens, np.uint64)
    # as_strided, not sliding_window_view: the same read-only view at half the call overhead;
    # an integer matrix-vector product (wrapping modulo 2**64) beats multiply-then-sum.
    windows = np.lib.stride_tricks.as_strided(tokens, (m, n), (8, 8), writeable=False)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        return _mix(windows @ powers)


def _event_windows(ev: Events, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every ``n``-pair window of every voice of ``ev`` in one vectorised pass.

    Returns:
        ``(hashes [w], valid [w])``: a window that straddles two voices is not ``valid``
        (keeping it in place, masked, keeps runs within one voice contiguous).
    """
    ticks = np.round(ev.onset * _TICKS_PER_QL).astype(np.int64)
    pitch = ev.pitch.astype(np.int64)
    voice = ev.voice.astype(np.int64)
    # By voice, onset, highest pitch first: one int64 key sorts 3x faster than a lexsort.
    order = np.argsort((voice << 40) | (np.clip(ticks, 0, (1 << 32) - 1) << 8) | (255 - pitch))
    ticks, pitch, voice = ticks[order], pitch[order], voice[order]
    keep = np.ones(len(ticks), bool)
    keep[1:] = (ticks[1:] != ticks[:-1]) | (voice[1:] != voice[:-1])  # skyline
    ticks, pitch, voice = ticks[keep], pitch[keep], voice[keep]
    if len(ticks) <= n:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    interval = np.clip(np.diff(pitch), -127, 127) + 128
    tokens = ((interval << 24) | np.clip(np.diff(ticks), 0, (1 << 24) - 1)).astype(np.uint64)
    crossings = np.concatenate(([0], np.cumsum(voice[1:] != voice[:-1])))
    return window_hashes(tokens, n), crossings[n:] == crossings[:-n]


def notes_hashes(notes: Notes, n: int = DEFAULT_N) -> list[np.ndarray]:
    """Window hashes of each melodic line of ``notes`` (an Events, or ``(pitch, onset_ql)``)."""
    lines = melodic_lines(notes) if isinstance(notes, Events) else [notes]
    return [window_hashes(line_tokens(p, o), n) for p, o in lines]


def _windows(notes: Notes, n: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(notes, Events):
        return _event_windows(notes, n)
    h = window_hashes(line_tokens(*notes), n)
    return h, np.ones(len(h), bool)


# -------------------------------------------------------------------------------- index

@dataclass
class NgramIndex:
    """Every corpus melody's ``n``-gram hashes, sorted and unique (``uint64 [count]``).

    Attributes:
        hashes: the sorted hash array (may be a read-only memory map of the ``.npy``).
        n: the run length the hashes cover.
        meta: how it was built (pieces, failures, seconds, music21 version).
    """

    hashes: np.ndarray
    n: int = DEFAULT_N
    meta: dict[str, Any] = field(default_factory=dict)

    def _found(self, h: np.ndarray) -> np.ndarray:
        if len(h) == 0 or len(self.hashes) == 0:
            return np.zeros(len(h), bool)
        pos = np.searchsorted(self.hashes, h)
        pos[pos == len(self.hashes)] = 0
        return self.hashes[pos] == h

    def longest_copied_run(self, notes: Notes) -> int:
        """The longest run of (interval, duration) pairs of ``notes`` found in the corpus.

        Consecutive matching windows chain: ``k`` of them in a row mean a copied run of
        ``n + k - 1`` pairs (an upper bound when overlapping windows come from different
        melodies). Runs shorter than ``n`` are not visible to the index: 0 means "no run of
        ``n``".
        """
        h, valid = _windows(notes, self.n)
        found = self._found(h) & valid
        if not found.any():
            return 0
        # The longest stretch of True: where stretches start and end.
        edges = np.diff(np.concatenate(([0], found.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        return int((ends - starts).max()) + self.n - 1

    def copies_corpus(self, notes: Notes, n: int = DEFAULT_N) -> bool:
        """True when ``notes`` copies a run of ``n`` or more pairs from a corpus melody.

        Raises:
            GenerationError: ``n`` is shorter than the index's run length (it cannot see those).
        """
        if n < self.n:
            raise GenerationError(f"this index covers runs of {self.n}; cannot test runs of {n}")
        if n == self.n:  # the common case: any hit at all
            h, valid = _windows(notes, self.n)
            return bool((self._found(h) & valid).any())
        return self.longest_copied_run(notes) >= n

    def save(self, path: Path) -> Path:
        """Write ``path`` (``.npy``) and its ``.json`` sidecar, each atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(self.hashes, np.uint64), allow_pickle=False)
        tmp.replace(path)
        meta = {**self.meta, "n": self.n, "count": int(len(self.hashes)),
                "version": _FORMAT_VERSION}
        side = path.with_suffix(".json")
        tmp_side = side.with_name(f".{side.name}.tmp")
        tmp_side.write_text(json.dumps(meta, indent=2, sort_keys=True))
        tmp_side.replace(side)
        return path

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> NgramIndex:
        """Read an index written by :meth:`save` (memory-mapped by default: instant, shared).

        Raises:
            GenerationError: missing, unreadable or not a sorted uint64 array.
        """
        path = Path(path)
        try:
            hashes = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            meta = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError) as e:
            raise GenerationError(f"cannot read the novelty index {path} ({e}); run "
                                  "`tunescope build-novelty-index`") from e
        if hashes.dtype != np.uint64 or hashes.ndim != 1 or meta.get("version") != _FORMAT_VERSION:
            raise GenerationError(f"{path} is not a novelty index of version {_FORMAT_VERSION}; "
                                  "rebuild it with `tunescope build-novelty-index`")
        return cls(hashes, int(meta["n"]), meta)


def _source_hashes(args: tuple[Source, int]) -> tuple[str, np.ndarray | None, str | None]:
    """Parse one piece and hash its lines (runs in a worker process)."""
    from generation.demo.catalog import _quiet_music21

    source, n = args
    _quiet_music21()
    try:
        ev = score_to_events(load_score(corpus_root() / source.path, source.abc))
        parts = notes_hashes(ev, n)
        return source.piece_id, np.concatenate(parts) if parts else np.zeros(0, np.uint64), None
    except Exception as e:  # a malformed score must not stop the build; it is counted
        return source.piece_id, None, f"{type(e).__name__}: {e}"


def build_ngram_index(sources: Sequence[Source] | None = None, *, n: int = DEFAULT_N,
                      workers: int = 1,
                      progress: Callable[[int, int], None] | None = None) -> NgramIndex:
    """Hash every melodic line of ``sources`` (default: the whole corpus the demo uses).

    Args:
        sources: pieces to index; :func:`list_sources` when None.
        n: run length.
        workers: parsing processes (music21 parsing is the whole cost).
        progress: called with (pieces done, pieces total).

    Returns:
        The index; ``meta`` records pieces, failures (first 50 with reasons) and seconds.
    """
    import music21

    sources = list(list_sources() if sources is None else sources)
    t0 = time.perf_counter()
    parts: list[np.ndarray] = []
    failures: dict[str, str] = {}
    jobs = [(s, n) for s in sources]
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_source_hashes, jobs, chunksize=16)
    else:
        pool, results = None, map(_source_hashes, jobs)
    try:
        for done, (piece_id, hashes, error) in enumerate(results, 1):
            if hashes is None:
                failures[piece_id] = error or "unknown"
            else:
                parts.append(hashes)
            if progress:
                progress(done, len(jobs))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    meta = {"pieces": len(sources) - len(failures), "failed": len(failures),
            "failures": dict(list(failures.items())[:50]), "seconds": time.perf_counter() - t0,
            "music21": music21.__version__, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                     time.gmtime())}
    return NgramIndex(hashes, n, meta)


# ------------------------------------------------------------------ the embedding gate

@dataclass(frozen=True)
class GateResult:
    """The acoustic gate's verdict on one candidate.

    Attributes:
        passed: True when no catalog vector is more similar than the threshold.
        max_similarity: cosine similarity to the nearest catalog vector (-1 for an empty one).
        threshold: the bar it was held to.
        nearest: row indices of the ``k`` nearest catalog vectors, nearest first.
        similarities: their cosine similarities.
    """

    passed: bool
    max_similarity: float
    threshold: float
    nearest: np.ndarray
    similarities: np.ndarray


def embedding_gate(candidate_vec: np.ndarray, catalog_vectors: np.ndarray, threshold: float, *,
                   k: int = 5) -> GateResult:
    """Reject a candidate that sounds like a catalog track (cosine above ``threshold``).

    Args:
        candidate_vec: float32 ``[dim]`` embedding (normalised here).
        catalog_vectors: float32 ``[n, dim]`` L2-normalised catalog embeddings (or the
            neighbours an ANN search returned).
        threshold: :func:`different_work_threshold`'s value.
        k: neighbours reported (provenance keeps them).

    Returns:
        The verdict with the similarity and the neighbours.
    """
    v = np.asarray(candidate_vec, np.float32).ravel()
    v = v / max(float(np.linalg.norm(v)), 1e-12)
    cat = np.asarray(catalog_vectors, np.float32).reshape(-1, len(v))
    if len(cat) == 0:
        return GateResult(True, -1.0, float(threshold), np.zeros(0, np.int64), np.zeros(0, np.float32))
    sims = cat @ v
    top = np.argsort(-sims, kind="stable")[:k]
    best = float(sims[top[0]])
    return GateResult(best <= threshold, best, float(threshold), top, sims[top])


def different_work_threshold(vectors: np.ndarray, work_ids: Sequence[str | None], *,
                             percentile: float = 99.0, max_pairs: int = 200_000,
                             seed: int = 0) -> float:
    """The ``percentile`` of cosine similarity between catalog tracks of different works.

    Pairs are every pair when there are at most ``max_pairs`` of them, else ``max_pairs``
    uniform random ones (seeded: the same catalog gives the same bar); pairs of one work
    (renders, transpositions, excerpts of a piece: ``piece_id``) are left out. A track
    without a work id is a work of its own.

    Args:
        vectors: float32 ``[n, dim]`` L2-normalised embeddings.
        work_ids: ``[n]`` work (piece) ids.
        percentile: 99 for the gate.
        max_pairs: sample size.
        seed: sampling seed.

    Raises:
        GenerationError: fewer than two works, or ids and vectors that disagree in length.
    """
    x = np.asarray(vectors, np.float32)
    if len(work_ids) != len(x):
        raise GenerationError(f"{len(work_ids)} work ids for {len(x)} vectors")
    ids = [w if w is not None else f"\0track{i}" for i, w in enumerate(work_ids)]
    _, work = np.unique(np.asarray(ids, dtype=object).astype(str), return_inverse=True)
    if work.max(initial=-1) < 1:
        raise GenerationError("the threshold needs tracks of at least two different works")
    n = len(x)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, max_pairs), rng.integers(0, n, max_pairs)
    keep = work[i] != work[j]
    i, j = i[keep], j[keep]
    # In chunks: gathering 200,000 pairs of 512-d rows at once is 800 MB of copies.
    step = 16_384
    sims = np.concatenate([np.einsum("ij,ij->i", x[i[a:a + step]], x[j[a:a + step]])
                           for a in range(0, len(i), step)] or [np.zeros(0, np.float32)])
    return float(np.percentile(sims, percentile))


def catalog_work_threshold(session: Session, encoder_id: str, dim: int, *,
                           percentile: float = 99.0, max_pairs: int = 200_000,
                           seed: int = 0) -> float:
    """:func:`different_work_threshold` over the catalog's own tracks for one encoder.

    Only ``origin = 'catalog'`` tracks count: generated tracks must not move the bar they are
    held to. Works are ``piece_id`` (every render of a corpus piece shares one).
    """
    from index.vectors import load_embeddings  # faiss loads only when a gate is calibrated

    ids, vectors = load_embeddings(session, encoder_id, dim)
    works = dict(session.execute(select(Track.id, Track.piece_id).where(Track.origin == "catalog")).all())
    keep = np.array([int(i) in works for i in ids], bool)
    return different_work_threshold(vectors[keep], [works[int(i)] for i in ids[keep]],
                                    percentile=percentile, max_pairs=max_pairs, seed=seed)
