"""``tunescope ingest`` and ``tunescope catalog stats``: filling the catalog and looking at it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings, get_settings
from index.db import open_catalog, session_scope
from index.errors import CatalogError
from index.ingest import OnBatch, ingest
from index.stats import catalog_stats
from index.store import AudioStore


def open_from_settings(settings: Settings) -> sessionmaker[Session]:
    """Create ``TUNESCOPE_HOME`` if needed, then open (and migrate) the configured catalog."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return open_catalog(settings.resolved_database_url)


def _embedding_stage(settings: Settings) -> OnBatch | None:
    """HOOK for the encoder issue: the embedding stage of ingestion.

    Return ``on_batch(session, tracks)`` that embeds the new tracks with the configured encoder
    and adds their ``Embedding`` rows to ``session``; it runs inside each batch's transaction
    (see :func:`index.ingest.ingest`). ``None`` means tracks are ingested without embeddings.
    """
    from api.wiring import build_encoder
    from retrieval.embedding import make_embedding_stage

    return make_embedding_stage(build_encoder(settings), AudioStore(settings.audio_dir))


def ingest_command(
    paths: list[Path] = typer.Argument(..., help="Audio files and/or folders (walked recursive)."),
    metadata: Path | None = typer.Option(None, "--metadata", help="Metadata file, .jsonl or .csv."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Files per transaction."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    embed: bool = typer.Option(True, "--embed/--no-embed",
                               help="Embed new tracks with the configured encoder in the same transaction."),
) -> None:
    """Ingest audio files into the catalog (bad files are quarantined, never fatal)."""
    settings = get_settings()
    console = Console()
    factory = open_from_settings(settings)
    try:
        summary = ingest(
            paths, factory, AudioStore(settings.audio_dir),
            metadata=metadata,
            min_duration_s=settings.min_duration_s,
            max_duration_s=settings.max_duration_s,
            batch_size=batch_size,
            on_batch=_embedding_stage(settings) if embed else None,
            progress=not no_progress,
        )
    except CatalogError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from e
    table = Table(title=f"Ingest run {summary.run_id}")
    table.add_column("result")
    table.add_column("files", justify="right")
    table.add_row("ingested", str(summary.ingested))
    table.add_row("duplicates", str(summary.duplicates))
    table.add_row("quarantined", str(len(summary.quarantined)))
    if summary.skipped:
        table.add_row("skipped (not audio by extension)", str(summary.skipped))
    console.print(table)
    for item in summary.quarantined:
        # soft_wrap: one line per file, never a path broken across lines (grep-able).
        console.print(f"[yellow]quarantined[/yellow] {escape(item.path)}: {escape(item.reason)}",
                      highlight=False, soft_wrap=True, markup=True)
    if summary.interrupted_runs:
        console.print(f"marked stale runs {summary.interrupted_runs} as interrupted")
    if summary.ingested == 0 and summary.quarantined:
        raise typer.Exit(1)


def stats_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Counts per collection, tune type, ensemble, origin and split; total hours."""
    factory = open_from_settings(get_settings())
    with session_scope(factory) as session:
        stats = catalog_stats(session)
    if as_json:
        typer.echo(json.dumps(stats.to_dict(), indent=2, sort_keys=True))
        return
    console = Console()
    console.print(f"tracks: {stats.tracks}   hours: {stats.total_hours:.2f}   "
                  f"quarantined: {stats.quarantined}")
    for name, counts in stats.by.items():
        table = Table(title=name.replace("_", " "))
        table.add_column(name)
        table.add_column("tracks", justify="right")
        for value, n in counts.items():
            table.add_row(value, str(n))
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` and the ``catalog`` group to the CLI."""
    app.command("ingest")(ingest_command)
    catalog_app = typer.Typer(help="Inspect the catalog.", no_args_is_help=True)
    catalog_app.command("stats")(stats_command)
    app.add_typer(catalog_app, name="catalog")
