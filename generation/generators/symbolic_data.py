"""Training data of the symbolic generator: corpus melodies, their keys, and (some) embeddings.

Two kinds of pieces:

- **catalog pieces**: the demo catalog's rows; each has the audio embedding of its render in
  the catalog database (MusicLM's recipe: the condition is the embedding of the very audio the
  notes made) and the render's facts (tempo class, ensemble), which become header tokens;
- **extra pieces**: more corpus tunes of the *train* split (never a validation or test piece of
  the catalog, whose split is a function of the piece id), without an embedding: they teach the
  melody model on attributes alone (the null condition), which is what the unconditional and
  attributes-only variants need and what a 1,158-piece conditioned set is too small for.

Parsing is the slow part (music21), so the parsed melodies are cached under
``<cache_dir>/melodies-<fingerprint>.npz`` (voice 0 of each piece: onsets, durations, pitches,
metrical strengths, and the piece's meter and key); tokens are derived from it in
milliseconds, so the token layout can change without a re-parse. Embeddings are *not* cached:
they are read from the database each time, so a re-embedded catalog (a new encoder) is picked
up by the next training run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generation.errors import GenerationError
from generation.symbolic import tokens as T
from generation.symbolic.corpus import Source, corpus_root, list_sources
from generation.symbolic.render import Events, load_score, score_to_events

log = logging.getLogger(__name__)
CACHE_VERSION = 1
_PC = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6,
       "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11}
_MINOR_MODES = ("minor", "dorian", "aeolian", "phrygian")


@dataclass(frozen=True)
class ParsedPiece:
    """One piece's melody (voice 0) and its key, as parsed from the corpus.

    Attributes:
        piece_id: the corpus id (``oneill/1850/345``).
        events: voice-0 note events.
        meter: the written meter (``"6/8"``); may be outside :data:`tokens.METERS`.
        tonic_pc: the tonic's pitch class (the written key, else the final note).
        minor: minor-family mode (minor, dorian, aeolian, phrygian).
        tune_type: the corpus's tune type, if any.
    """

    piece_id: str
    events: Events
    meter: str | None
    tonic_pc: int
    minor: bool
    tune_type: str | None


def piece_key(ev: Events, facts: dict[str, Any]) -> tuple[int, bool]:
    """(tonic pitch class, minor) the way the demo catalog decides it (written key, else finalis).

    The final note of the bass is the tonic of folk tunes and modal polyphony; the third above
    it, weighted by duration, says major or minor (``generation.demo.catalog._finalis_mode``).
    """
    last = ev.onset.max()
    final_pc = int(ev.pitch[np.isclose(ev.onset, last)].min()) % 12
    written = _PC.get(str(facts.get("key"))) if facts.get("key") else None
    tonic = written if written is not None else final_pc
    mode = facts.get("mode")
    if mode is None:
        pcs = ev.pitch.astype(int) % 12
        minor = float(ev.dur[pcs == (tonic + 3) % 12].sum()) > float(ev.dur[pcs == (tonic + 4) % 12].sum())
        return tonic, minor
    return tonic, mode in _MINOR_MODES


def parse_source(source: Source) -> ParsedPiece | str:
    """Parse one piece (a worker's job); a string says why it was skipped."""
    from generation.demo.catalog import _quiet_music21, _score_meter

    _quiet_music21()
    try:
        score = load_score(corpus_root() / source.path, source.abc)
        ev = score_to_events(score)
        meter = source.facts.get("meter") or _score_meter(score)
        tonic, minor = piece_key(ev, dict(source.facts))
        sel = ev.voice == 0
        top = Events(onset=ev.onset[sel], dur=ev.dur[sel], pitch=ev.pitch[sel],
                     voice=ev.voice[sel], strength=ev.strength[sel], length_ql=ev.length_ql,
                     n_voices=1, bar_ql=ev.bar_ql, beat_ql=ev.beat_ql)
        return ParsedPiece(source.piece_id, top, meter, tonic, minor, source.facts.get("tune_type"))
    except Exception as e:  # noqa: BLE001 - a malformed score is skipped, never fatal
        return f"{source.piece_id}: {type(e).__name__}: {e}"


def extra_sources(exclude: set[str], n: int, seed: int = 0) -> list[Source]:
    """Up to ``n`` train-split ABC tunes not in ``exclude``, round-robin over collections.

    ABC tunes parse in ~30 ms each (the polyphonic works take seconds), and their meters are
    the ones the vocabulary knows.
    """
    from generation.demo.catalog import split_of

    rng = np.random.default_rng(seed)
    by_book: dict[str, list[Source]] = {}
    for s in list_sources():
        if s.abc is None or s.piece_id in exclude or split_of(s.piece_id) != "train":
            continue
        if s.facts.get("meter") not in T.METERS:
            continue
        by_book.setdefault(s.piece_id.split("/")[0], []).append(s)
    pools = [list(rng.permutation(np.array(v, dtype=object))) for _, v in sorted(by_book.items())]
    out: list[Source] = []
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop())
    return out


def _fingerprint(sources: Sequence[Source]) -> str:
    text = f"v{CACHE_VERSION}\n" + "\n".join(s.piece_id for s in sources)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save(path: Path, pieces: Sequence[ParsedPiece]) -> None:
    lens = np.array([len(p.events.onset) for p in pieces], np.int64)
    meta = [{"piece_id": p.piece_id, "meter": p.meter, "tonic_pc": p.tonic_pc, "minor": p.minor,
             "tune_type": p.tune_type, "length_ql": p.events.length_ql, "bar_ql": p.events.bar_ql,
             "beat_ql": p.events.beat_ql} for p in pieces]
    cat = {k: np.concatenate([getattr(p.events, k) for p in pieces]) if pieces else np.zeros(0)
           for k in ("onset", "dur", "pitch", "strength")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, lens=lens, meta=json.dumps(meta), **cat)
    os.replace(tmp, path)


def _load(path: Path) -> list[ParsedPiece]:
    # Each ``z[name]`` decompresses the whole array again, and a slice of it keeps that copy
    # alive: read every array once, and copy each piece's slice out of it.
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        lens = z["lens"]
        arrays = {k: z[k] for k in ("onset", "dur", "pitch", "strength")}
    ends = np.cumsum(lens)
    out: list[ParsedPiece] = []
    for m, end, n in zip(meta, ends, lens, strict=True):
        sl = slice(int(end - n), int(end))
        ev = Events(onset=arrays["onset"][sl].copy(), dur=arrays["dur"][sl].copy(),
                    pitch=arrays["pitch"][sl].astype(np.int16), voice=np.zeros(int(n), np.int16),
                    strength=arrays["strength"][sl].astype(np.float32),
                    length_ql=m["length_ql"], n_voices=1, bar_ql=m["bar_ql"], beat_ql=m["beat_ql"])
        out.append(ParsedPiece(m["piece_id"], ev, m["meter"], m["tonic_pc"], m["minor"], m["tune_type"]))
    return out


def parse_sources(sources: Sequence[Source], cache_dir: str | Path, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None) -> list[ParsedPiece]:
    """Parsed melodies of ``sources`` (those that parse), from the cache when it has them.

    Args:
        sources: the pieces, in order.
        cache_dir: where ``melodies-<fingerprint>.npz`` lives (``$TUNESCOPE_HOME/generator-data``).
        workers: parsing processes.
        progress: called as ``progress(done, total)``.
    """
    path = Path(cache_dir) / f"melodies-{_fingerprint(sources)}.npz"
    if path.is_file():
        return _load(path)
    pieces: list[ParsedPiece] = []
    results: Any
    if workers <= 1:
        results = map(parse_source, sources)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(parse_source, sources, chunksize=8)
    try:
        for i, res in enumerate(results, 1):
            if isinstance(res, str):
                log.info("skipped %s", res)
            else:
                pieces.append(res)
            if progress and (i % 100 == 0 or i == len(sources)):
                progress(i, len(sources))
    finally:
        if pool is not None:
            pool.shutdown()
    if not pieces:
        raise GenerationError("no piece could be parsed")
    _save(path, pieces)
    return pieces


def sources_by_id(piece_ids: Sequence[str]) -> list[Source]:
    """The corpus sources of ``piece_ids``, in that order (ids not in the corpus are dropped)."""
    index = {s.piece_id: s for s in list_sources()}
    return [index[p] for p in piece_ids if p in index]
