"""``tunescope demo-catalog``: render the demo catalog from the music21 corpus."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)


def demo_catalog(
    out: Path = typer.Option(Path("var/demo-catalog"), "--out", help="Folder for audio/ and metadata.jsonl."),
    size: int = typer.Option(1500, "--size", min=1, max=20000, help="Number of pieces."),
    seed: int = typer.Option(0, "--seed", help="Everything is a function of the seed."),
    renders: int = typer.Option(1, "--renders", min=1, max=16, help="Renders per piece."),
    sample_rate: int = typer.Option(22050, "--sample-rate", min=8000, max=96000),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0: all cores)."),
    split: list[str] = typer.Option([], "--split", help="Only pieces of this split (repeatable): train, "
                                    "validation, test. A test-only catalog is an evaluation set."),
    soundfont: str = typer.Option("train", "--soundfont",
                                  help="'train' (the training soundfonts) or 'heldout' (one never trained on)."),
    variety: str = typer.Option(None, "--variety", help="Render variety: 'train' (encoder v2's training "
                                "variation) or 'heldout' (the held-out variant: FluidSynth, deadpan piano; "
                                "use with --soundfont heldout)."),
) -> None:
    """Render real corpus pieces as 20-30 s excerpts, with metadata and captions.

    The pieces are Irish/Scottish dance tunes, Essen folk songs, Bach chorales, string quartets
    and Renaissance polyphony. ``--split test --soundfont heldout`` renders an evaluation set:
    pieces no model trained on, played by a soundfont none trained on (``tunescope eval-prior
    --catalog`` reads it).
    """
    from generation.demo.catalog import build_catalog
    from generation.symbolic.render import HELDOUT_SOUNDFONT, soundfont_paths

    bad = sorted(set(split) - {"train", "validation", "test"})
    if bad:
        raise typer.BadParameter(f"--split must be train, validation or test, got {', '.join(bad)}")
    if soundfont not in ("train", "heldout"):
        raise typer.BadParameter(f"--soundfont must be 'train' or 'heldout', got {soundfont!r}")
    if variety not in (None, "train", "heldout"):
        raise typer.BadParameter(f"--variety must be 'train' or 'heldout', got {variety!r}")
    sfs: tuple[str, ...] | None = None
    if soundfont == "heldout":
        if HELDOUT_SOUNDFONT not in soundfont_paths():
            console.print(f"[red]error:[/red] the held-out soundfont {HELDOUT_SOUNDFONT} is not installed; "
                          "run `make soundfonts`")
            raise typer.Exit(2)
        sfs = (HELDOUT_SOUNDFONT,)
    with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("render", total=size)
        summary = build_catalog(out, size, seed, renders=renders, sample_rate=sample_rate,
                                workers=workers or None, soundfonts=sfs, splits=split or None,
                                variety=variety, progress=lambda done, total: bar.update(task, completed=done))
    table = Table(title=f"demo catalog: {summary['tracks']} tracks from {summary['pieces']} pieces")
    table.add_column("family")
    table.add_column("tracks", justify="right")
    for fam, n in sorted(summary["families"].items(), key=lambda kv: -kv[1]):
        table.add_row(fam, str(n))
    console.print(table)
    if summary["failures"]:
        console.print(f"[yellow]{len(summary['failures'])} pieces skipped (replaced from the reserve):")
        for pid, why in list(summary["failures"].items())[:10]:
            console.print(f"  {pid}: {why}")
    (Path(out) / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"wrote {Path(out) / 'metadata.jsonl'}")


def register(app: typer.Typer) -> None:
    """Add ``demo-catalog`` to the CLI."""
    app.command("demo-catalog")(demo_catalog)
