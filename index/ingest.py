"""Ingestion: audio files (+ optional metadata) into the catalog and the audio store.

Crash safety comes from three properties, so a run killed at any instant (even SIGKILL) can
simply be run again:

1. store writes are atomic and content-addressed (a file in the store without a row is
   harmless and is reused by the next run);
2. tracks are inserted in ONE transaction per batch (never a partial batch);
3. duplicates are recognised by content hash, against the database and within the run.

A run's own row (``ingest_runs``) stays ``running`` if its process dies; the next run marks it
``interrupted`` after checking its pid is gone.

The embedding stage plugs in through ``on_batch(session, tracks)``: it runs inside the batch's
transaction, after the tracks are flushed (they have ids) and before the commit, so a track is
never committed without its embeddings when an encoder is configured, and an encoder failure
rolls the batch back. The ``index`` package knows no encoder; the caller (``api``) passes one in.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from index.audio import AUDIO_EXTENSIONS, ValidatedAudio, validate
from index.db import session_scope
from index.errors import CatalogError, DecodeError
from index.metadata import MetadataIndex, load_metadata
from index.models import IngestRun, Quarantine, Track
from index.store import AudioStore, hash_file

log = logging.getLogger(__name__)

OnBatch = Callable[[Session, list[Track]], None]


@dataclass(frozen=True)
class QuarantinedFile:
    """A file that was refused, and the reason shown to the user."""

    path: str
    reason: str


@dataclass
class IngestSummary:
    """What one ingestion run did.

    Attributes:
        run_id: the ``ingest_runs`` row.
        ingested: tracks added.
        duplicates: files whose content was already in the catalog (or earlier in this run).
        quarantined: refused files with their reasons.
        skipped: files in walked folders that do not have an audio extension.
        track_ids: ids of the tracks added, in ingestion order.
        interrupted_runs: ids of stale runs this run marked ``interrupted``.
    """

    run_id: int
    ingested: int = 0
    duplicates: int = 0
    quarantined: list[QuarantinedFile] = field(default_factory=list)
    skipped: int = 0
    track_ids: list[int] = field(default_factory=list)
    interrupted_runs: list[int] = field(default_factory=list)

    @property
    def seen(self) -> int:
        """Files looked at (ingested + duplicates + quarantined)."""
        return self.ingested + self.duplicates + len(self.quarantined)


def iter_audio_files(paths: Sequence[Path]) -> tuple[list[Path], int]:
    """Expand files and folders into a sorted, de-duplicated list of files to ingest.

    Files named explicitly are always tried (a wrong one is quarantined with its reason);
    inside folders only files with an audio extension are taken, so a catalog folder may hold
    its metadata file, cover images and notes. Hidden files and folders are ignored.

    Returns:
        The files (absolute, in a deterministic order) and how many folder entries were skipped.

    Raises:
        CatalogError: a path that does not exist.
    """
    found: dict[str, Path] = {}
    skipped = 0
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    candidate = Path(root) / name
                    if candidate.suffix.lower() in AUDIO_EXTENSIONS:
                        found.setdefault(str(candidate), candidate)
                    else:
                        skipped += 1
        elif path.exists():
            found.setdefault(str(path), path)
        else:
            raise CatalogError(f"no such file or folder: {raw}")
    return [found[k] for k in sorted(found)], skipped


def _pid_alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _start_run(factory: sessionmaker[Session], paths: Sequence[Path]) -> tuple[int, list[int]]:
    """Mark dead ``running`` runs interrupted, then record this one (own transaction)."""
    with session_scope(factory) as session:
        stale = session.scalars(select(IngestRun).where(IngestRun.status == "running")).all()
        interrupted = []
        for run in stale:
            if not _pid_alive(run.pid):
                run.status = "interrupted"
                interrupted.append(run.id)
        run = IngestRun(status="running", pid=os.getpid(), paths=[str(p) for p in paths])
        session.add(run)
        session.flush()
        return run.id, interrupted


def _finish_run(factory: sessionmaker[Session], run_id: int, status: str) -> None:
    with session_scope(factory) as session:
        run = session.get(IngestRun, run_id)
        if run is not None:
            run.status = status
            run.finished_at = dt.datetime.now(dt.UTC)


@dataclass
class _Accepted:
    path: Path
    content_hash: str
    audio: ValidatedAudio
    audio_path: str


@dataclass
class _Refused:
    path: Path
    content_hash: str | None
    reason: str


def _batches(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Ingestor:
    """State of one run; ``run_batch`` is the unit of work and of crash safety."""

    def __init__(self, factory: sessionmaker[Session], store: AudioStore, summary: IngestSummary,
                 metadata: MetadataIndex | None, min_duration_s: float, max_duration_s: float,
                 on_batch: OnBatch | None) -> None:
        self.factory = factory
        self.store = store
        self.summary = summary
        self.metadata = metadata
        self.min_duration_s = min_duration_s
        self.max_duration_s = max_duration_s
        self.on_batch = on_batch
        self.seen_hashes: set[str] = set()

    def _examine(self, hashes: dict[Path, str | None],
                 known: set[str]) -> tuple[list[_Accepted], list[_Refused], int]:
        """De-duplicate, validate and store one batch's files (no database writes)."""
        accepted: list[_Accepted] = []
        refused: list[_Refused] = []
        duplicates = 0
        for path, content_hash in hashes.items():
            if content_hash is None:
                refused.append(_Refused(path, None, "cannot read file (missing or no permission)"))
                continue
            if content_hash in known or content_hash in self.seen_hashes:
                duplicates += 1
                continue
            self.seen_hashes.add(content_hash)
            try:
                audio = validate(path, min_duration_s=self.min_duration_s,
                                 max_duration_s=self.max_duration_s)
            except DecodeError as e:
                refused.append(_Refused(path, content_hash, str(e)))
                continue
            rel = self.store.put(path, content_hash, audio.info.format)
            accepted.append(_Accepted(path, content_hash, audio, rel))
        return accepted, refused, duplicates

    def _track(self, item: _Accepted) -> Track:
        info = item.audio.info
        fields: dict[str, Any] = {"title": item.path.stem, "tags": [], "instruments": [],
                                  "origin": "catalog", "provenance": {}, "extra": {}}
        if self.metadata is not None:
            fields.update(self.metadata.lookup(item.path) or {})
        return Track(
            content_hash=item.content_hash,
            duration_s=info.duration_s,
            sample_rate=info.sample_rate,
            channels=info.channels,
            loudness_db=item.audio.loudness_db,
            audio_format=info.format,
            source_path=str(item.path),
            audio_path=item.audio_path,
            ingest_run_id=self.summary.run_id,
            **fields,
        )

    def _quarantine(self, session: Session, refused: list[_Refused]) -> None:
        for item in refused:
            existing = session.scalars(
                select(Quarantine).where(
                    Quarantine.path == str(item.path),
                    Quarantine.content_hash.is_(None) if item.content_hash is None
                    else Quarantine.content_hash == item.content_hash,
                )
            ).first()
            if existing is None:
                session.add(Quarantine(run_id=self.summary.run_id, path=str(item.path),
                                       content_hash=item.content_hash, reason=item.reason))
            else:  # same file, same bytes: refresh rather than duplicate
                existing.run_id = self.summary.run_id
                existing.reason = item.reason

    def run_batch(self, paths: list[Path]) -> None:
        """Ingest one batch in one transaction (retried once if a concurrent run raced us)."""
        hashes = {path: _safe_hash(path) for path in paths}
        for attempt in range(2):
            candidates = sorted({h for h in hashes.values() if h})
            with self.factory() as session:
                known = set(session.scalars(
                    select(Track.content_hash).where(Track.content_hash.in_(candidates))
                )) if candidates else set()
            seen_before = set(self.seen_hashes)
            accepted, refused, duplicates = self._examine(hashes, known)
            try:
                with session_scope(self.factory) as session:
                    tracks = [self._track(item) for item in accepted]
                    session.add_all(tracks)
                    self._quarantine(session, refused)
                    run = session.get(IngestRun, self.summary.run_id)
                    assert run is not None
                    run.n_seen += len(paths)
                    run.n_ingested += len(tracks)
                    run.n_duplicates += duplicates
                    run.n_quarantined += len(refused)
                    session.flush()
                    # Hook point: the embedding stage runs here, inside the transaction.
                    if self.on_batch is not None and tracks:
                        self.on_batch(session, tracks)
            except IntegrityError:
                if attempt == 1:
                    raise
                # Another process inserted one of these hashes between our check and our
                # commit: forget what this attempt saw and re-check against the database.
                log.info("batch raced a concurrent ingest; retrying")
                self.seen_hashes = seen_before
                continue
            self.summary.ingested += len(tracks)
            self.summary.duplicates += duplicates
            self.summary.track_ids.extend(t.id for t in tracks)
            self.summary.quarantined.extend(QuarantinedFile(str(r.path), r.reason) for r in refused)
            return


def _safe_hash(path: Path) -> str | None:
    try:
        return hash_file(path)
    except OSError as e:
        log.warning("cannot read %s: %s", path, e)
        return None


def _progress(enabled: bool, total: int) -> Progress:
    console = Console(file=sys.stderr)
    return Progress(
        TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    )


def ingest(
    paths: Sequence[Path],
    factory: sessionmaker[Session],
    store: AudioStore,
    *,
    metadata: Path | None = None,
    min_duration_s: float = 1.0,
    max_duration_s: float = 1800.0,
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Ingest audio files and folders into the catalog.

    Bad input never aborts the run: each refused file is quarantined (a ``quarantine`` row with
    its path and reason; the file itself is left where it is) and the run goes on. Only system
    failures (the database, the store, an ``on_batch`` hook) abort it, leaving the run
    ``failed`` and every committed batch intact.

    Args:
        paths: audio files and/or folders (walked recursively, sorted).
        factory: session factory of a migrated catalog (:func:`index.db.open_catalog`).
        store: where accepted audio is copied.
        metadata: optional ``.jsonl``/``.csv`` file of per-track metadata.
        min_duration_s: shorter files are quarantined.
        max_duration_s: longer files are quarantined.
        batch_size: files per database transaction.
        on_batch: called as ``on_batch(session, tracks)`` inside each batch's transaction, after
            the new tracks are flushed (ids assigned) and before commit. This is where the
            embedding stage plugs in: whatever it adds to ``session`` commits atomically with
            the tracks; if it raises, the batch is rolled back and the run fails.
        progress: show a rich progress bar (only ever on a terminal).

    Returns:
        Counts, quarantined files with reasons, and the new track ids.

    Raises:
        CatalogError: a path that does not exist, a bad metadata file, a bad ``batch_size``.
    """
    if batch_size < 1:
        raise CatalogError(f"batch_size must be >= 1, got {batch_size}")
    if min_duration_s > max_duration_s:
        raise CatalogError(f"min_duration_s {min_duration_s} > max_duration_s {max_duration_s}")
    files, skipped = iter_audio_files(paths)
    meta = load_metadata(metadata) if metadata is not None else None
    run_id, interrupted = _start_run(factory, paths)
    summary = IngestSummary(run_id=run_id, skipped=skipped, interrupted_runs=interrupted)
    if interrupted:
        log.warning("marked stale ingest runs %s as interrupted", interrupted)
    worker = _Ingestor(factory, store, summary, meta, min_duration_s, max_duration_s, on_batch)
    status = "failed"
    try:
        with _progress(progress, len(files)) as bar:
            task = bar.add_task("ingest", total=len(files), status="")
            for batch in _batches(files, batch_size):
                worker.run_batch(batch)
                bar.update(task, advance=len(batch), status=(
                    f"{summary.ingested} new, {summary.duplicates} dup, "
                    f"{len(summary.quarantined)} bad"))
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        _finish_run(factory, run_id, status)
    return summary
