"""``tunescope train-generator`` and ``tunescope eval-generator``: the embedded symbolic generator.

``train-generator`` trains the melody model on the demo catalog (``$TUNESCOPE_HOME/demo-catalog``),
conditioned on the stored embeddings of the *configured* encoder (so it works again on a
re-embedded catalog), and writes the committed weights, sidecar and model card.
``eval-generator`` compares the conditioning variants on held-out pieces and prints the table.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from api.settings import get_settings
from api.wiring import build_encoder

console = Console(stderr=True)


def train_generator_command(
    budget_min: float = typer.Option(16.0, "--budget-min", min=0.1, max=30.0, help="Training wall budget (minutes)."),
    extra_pieces: int = typer.Option(2500, "--extra-pieces", min=0,
                                     help="Train-split corpus tunes without embeddings (null condition)."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=32, help="Tokens per training sequence."),
    dim: int = typer.Option(192, "--dim", min=8, help="GRU width."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers", min=1, help="Corpus parsing processes."),
    catalog: Path = typer.Option(None, "--catalog", help="Catalog folder (default: $TUNESCOPE_HOME/demo-catalog)."),
    out: Path = typer.Option(None, "--out", help="Weights file (default: the committed symbolic.safetensors)."),
) -> None:
    """Train the symbolic generator on the catalog's renders and their stored embeddings."""
    from generation.generators.symbolic_model import ModelConfig
    from generation.generators.symbolic_training import DEFAULT_WEIGHTS, TrainConfig, train_generator

    settings = get_settings()
    encoder = build_encoder(settings)
    config = TrainConfig(max_tokens=max_tokens, budget_s=budget_min * 60, seed=seed,
                         model=ModelConfig(dim=dim))
    command = "nice -n 10 tunescope " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t0 = time.monotonic()
    side = train_generator(catalog or settings.home / "demo-catalog", settings.resolved_database_url,
                           encoder.id, cache_dir=settings.home / "generator-data",
                           out=out or DEFAULT_WEIGHTS, extra_pieces=extra_pieces, config=config,
                           workers=workers, command=command, progress=console.print)
    m = side["metrics"]
    console.print(f"[green]wrote[/green] {out or DEFAULT_WEIGHTS} ({side['weights_id']}) in "
                  f"{time.monotonic() - t0:.0f} s: {m['steps']} steps, val NLL {m['val_nll_conditioned']:.3f}, "
                  f"test NLL {m['test_nll_conditioned']:.3f} (null condition {m['test_nll_null']:.3f})")


def eval_generator_command(
    pieces: int = typer.Option(24, "--pieces", min=1, help="Held-out pieces."),
    split: str = typer.Option("test", "--split", help="validation or test."),
    candidates: int = typer.Option(4, "--candidates", min=1, max=16, help="Candidates per piece and variant."),
    duration: float = typer.Option(10.0, "--duration", min=2.0, help="Seconds per candidate."),
    seed: int = typer.Option(0, "--seed"),
    weights: Path = typer.Option(None, "--weights", help="Weights file (default: the committed ones)."),
    caption: str = typer.Option("both", "--caption", help="longest, shortest or both (two tables)."),
) -> None:
    """Compare conditioning variants (text, prior samples, prior mean, attributes only) on held-out pieces."""
    from api.wiring import load_prior
    from generation.generators.symbolic_eval import evaluate_variants

    settings = get_settings()
    encoder = build_encoder(settings)
    prior = load_prior(encoder.id)
    for which in (("longest", "shortest") if caption == "both" else (caption,)):
        t0 = time.monotonic()
        rows = evaluate_variants(settings.home / "demo-catalog", settings.resolved_database_url, encoder,
                                 prior, split=split, n_pieces=pieces, n_candidates=candidates,
                                 duration_s=duration, seed=seed, weights=weights, caption=which)
        _print_table(rows, f"symbolic generator conditioning: {pieces} {split} pieces, {which} caption, "
                     f"{candidates} candidates each ({time.monotonic() - t0:.0f} s)")


def _print_table(rows: list[dict[str, object]], title: str) -> None:
    table = Table(title=title, box=box.SIMPLE)
    for col in ("variant", "cos best", "cos mean", "meter class", "mode (notes)", "mode (header)",
                "ensemble", "tempo"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        table.add_row(str(r["variant"]), *(f"{float(r[k]):.3f}" for k in ("cos_best", "cos_mean")),
                      *(f"{float(r[k]):.2f}" for k in ("meter", "mode", "mode_header", "ensemble", "tempo")))
    Console(width=120).print(table)


def register(app: typer.Typer) -> None:
    """Add ``train-generator`` and ``eval-generator`` to the CLI."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app.command("train-generator")(train_generator_command)
    app.command("eval-generator")(eval_generator_command)
