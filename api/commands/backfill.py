"""``tunescope worker`` and ``tunescope build-novelty-index``: the backfill side of the CLI."""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from generation.backfill.worker import Keeper, OnStored, Pipeline
    from index.models import BackfillJob

console = Console(stderr=True)


def _pipeline(spec: str | None, settings: Settings) -> Pipeline:
    from api.backfill import PipelineConfigError, load_pipeline

    try:
        return load_pipeline(spec, settings)
    except PipelineConfigError as e:
        raise typer.BadParameter(str(e)) from e


def _index_syncer(settings: Settings, factory: sessionmaker[Session], encoder_id: str) -> OnStored:
    """After each stored keeper: bring the saved index in line through the DB sync path."""
    from index.vectors import IndexConfig, VectorIndex

    def sync(track_id: int, keeper: Keeper) -> None:
        VectorIndex.open(settings.index_dir, encoder_id, len(keeper.embedding), factory,
                         config=IndexConfig(device=settings.device))

    return sync


def worker_command(
    generate: str | None = typer.Option(None, "--generate",
                                        help="'module:factory' of the pipeline (default: settings)."),
    worker_id: str | None = typer.Option(None, "--worker-id", help="Default: host:pid."),
    lease: float | None = typer.Option(None, "--lease", min=0.1, help="Lease seconds."),
    heartbeat: float | None = typer.Option(None, "--heartbeat", min=0.01, help="Heartbeat seconds."),
    poll: float | None = typer.Option(None, "--poll", min=0.01, help="Idle poll seconds."),
    max_jobs: int | None = typer.Option(None, "--max-jobs", min=1, help="Stop after N jobs."),
    exit_when_idle: bool = typer.Option(False, "--exit-when-idle", help="Stop when the queue is empty."),
    index: bool = typer.Option(True, "--index/--no-index", help="Sync the saved index after each keeper."),
) -> None:
    """Work backfill jobs from the catalog's queue until SIGTERM/Ctrl-C (or idle, or N jobs).

    SIGTERM or Ctrl-C stops after the candidate being stored and gives the job back to the
    queue; a second one exits at once (the job's lease then expires and another worker
    retries it).
    """
    from api.commands.catalog import open_from_settings
    from generation.backfill.worker import run_worker
    from index.store import AudioStore

    settings = get_settings()
    pipeline = _pipeline(generate or settings.backfill_generate, settings)
    factory = open_from_settings(settings)
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        console.print(f"{signal.Signals(signum).name}: stopping after the current candidate")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sync = _index_syncer(settings, factory, pipeline.encoder_id) if index else None

    def on_stored(track_id: int, keeper: Keeper) -> None:
        if sync is not None:
            sync(track_id, keeper)
        console.print(f"stored track {track_id} (candidate {keeper.provenance.candidate_index})",
                      highlight=False)

    def on_outcome(job: BackfillJob, outcome: str) -> None:
        console.print(f"job {job.id} attempt {job.attempts}/{job.max_attempts}: {outcome}",
                      highlight=False)

    console.print(f"worker {worker_id} polling the queue", highlight=False)
    stats = run_worker(
        factory, AudioStore(settings.audio_dir), pipeline.generate, worker_id=worker_id,
        lease_s=lease or settings.worker_lease_s, heartbeat_s=heartbeat or settings.worker_heartbeat_s,
        stop_event=stop, encoder_id=pipeline.encoder_id, poll_s=poll or settings.worker_poll_s,
        max_running=settings.backfill_max_running, max_jobs=max_jobs,
        exit_when_idle=exit_when_idle, on_stored=on_stored, on_outcome=on_outcome)
    console.print(f"worker {worker_id} stopped: {stats.claimed} claimed, {stats.done} done, "
                  f"{stats.retried} retried, {stats.failed} failed, {stats.released} given back, "
                  f"{stats.lost} lost, {stats.stored} tracks stored", highlight=False)


def build_novelty_index(
    workers: int = typer.Option(0, "--workers", min=0, help="Parsing processes (0: all cores)."),
    limit: int = typer.Option(0, "--limit", min=0, help="Only the first N corpus pieces (0: all)."),
) -> None:
    """Hash every 12-note run of every corpus melody into the novelty gate's index (once)."""
    from generation.backfill.novelty import build_ngram_index
    from generation.symbolic.corpus import list_sources

    settings = get_settings()
    sources = list_sources()
    if limit:
        sources = sources[:limit]
    with Progress(TextColumn("novelty index"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task("parse", total=len(sources))
        index = build_ngram_index(sources, workers=workers or os.cpu_count() or 1,
                                  progress=lambda done, total: bar.update(task, completed=done))
    path = index.save(settings.novelty_index_path)
    console.print(f"{len(index.hashes):,} distinct {index.n}-grams from {index.meta['pieces']:,} "
                  f"pieces ({index.meta['failed']} unparsable) in {index.meta['seconds']:.0f} s; "
                  f"{path.stat().st_size / 2**20:.1f} MiB at {path}")


def register(app: typer.Typer) -> None:
    """Add ``worker`` and ``build-novelty-index`` to the CLI.

    A worker runs one torch/OpenMP thread unless told otherwise (as ``tunescope generate``: a
    team of two on a busy machine made a backfill job 15x slower, benchmarks/RESULTS.md).
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app.command("worker")(worker_command)
    app.command("build-novelty-index")(build_novelty_index)
