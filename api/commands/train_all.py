"""``tunescope train-all``: retrain every model in the order they depend on each other.

The prior is trained in the encoder's embedding space and tied to its weights (its file is
named after the encoder id), and the catalog's vectors are the encoder's: a new encoder alone
would strand both. So one command runs, in order:

1. ``train-encoder`` (``--v2`` by default: the committed encoder's recipe);
2. ``embed``: every catalog track gets a vector from the new encoder (resumable; the search
   index catches up with the database when the server starts);
3. ``train-prior``: reads those stored vectors, trains, writes ``prior-<encoder id>``;
4. ``train-generator``: the symbolic generator, conditioned on those same stored vectors
   (its sidecar records the encoder id; a stale generator refuses to run with a new encoder).

Each step is the same command a user can run alone, run with the command line printed above
it (the options below, its own defaults otherwise), so ``train-all`` can never drift from the
steps it chains.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def train_all_command(
    ctx: typer.Context,
    v2: bool = typer.Option(True, "--v2/--v1", help="Encoder recipe (v2: the committed one)."),
    size: int = typer.Option(4500, "--size", min=10, help="Encoder training pieces."),
    renders: int = typer.Option(1, "--renders", min=1, max=8, help="Renders per training piece."),
    extra_captions: int = typer.Option(6, "--extra-captions", min=0, max=32,
                                       help="Varied captions per clip beside the catalog's."),
    val_size: int = typer.Option(200, "--val-size", min=10, help="Encoder validation pieces."),
    epochs: int = typer.Option(40, "--epochs", min=1, max=500, help="Encoder epochs (at most)."),
    budget_min: float = typer.Option(30.0, "--budget-min", min=1.0, help="Encoder training budget (minutes)."),
    init: Path = typer.Option(None, "--init", help="Warm-start the encoder from these weights "
                              "(train-encoder --init)."),
    rhythm: int = typer.Option(None, "--rhythm", min=1, max=3, help="Encoder rhythm-branch input "
                               "(train-encoder --rhythm)."),
    lr: float = typer.Option(None, "--lr", min=1e-6, max=1.0, help="Encoder peak learning rate."),
    prompt_weight: float = typer.Option(None, "--prompt-weight", min=0.0, max=10.0,
                                        help="Encoder prompt-loss weight (train-encoder --prompt-weight)."),
    prior_steps: int = typer.Option(6000, "--prior-steps", min=1, help="Prior optimiser steps."),
    prior_batch_size: int = typer.Option(256, "--prior-batch-size", min=1),
    generator: bool = typer.Option(True, "--generator/--no-generator",
                                   help="Also retrain the symbolic generator (step 4)."),
    generator_budget_min: float = typer.Option(16.0, "--generator-budget-min", min=0.1, max=30.0,
                                               help="Symbolic generator training budget (minutes)."),
    generator_out: Path = typer.Option(None, "--generator-out",
                                       help="Generator weights file (default: the committed symbolic.safetensors)."),
    encoder_out: Path = typer.Option(None, "--encoder-out",
                                     help="Encoder weights file (default: the packaged clap-mini)."),
    prior_out: Path = typer.Option(None, "--prior-out", help="Prior weights file (default: the package's, "
                                   "one per encoder id)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Retrain the encoder, re-embed the catalog with it, then retrain the prior and the generator on it."""
    root = ctx.find_root().command  # the CLI group (Typer vendors its own click: no isinstance)
    if not hasattr(root, "get_command"):
        raise typer.BadParameter("train-all must run from the tunescope CLI")
    steps: list[tuple[str, dict[str, object]]] = [
        ("train-encoder", {"v2": v2, "size": size, "renders": renders, "extra_captions": extra_captions,
                           "val_size": val_size, "epochs": epochs, "budget_min": budget_min, "seed": seed,
                           "init": init, "rhythm": rhythm, "lr": lr, "prompt_weight": prompt_weight,
                           "out": encoder_out}),
        ("embed", {}),
        ("train-prior", {"steps": prior_steps, "batch_size": prior_batch_size, "seed": seed, "out": prior_out}),
    ]
    if generator:
        steps.append(("train-generator", {"budget_min": generator_budget_min, "seed": seed, "out": generator_out}))
    if encoder_out is not None:
        console.print("[yellow]note:[/yellow] --encoder-out is not the configured encoder: set "
                      "TUNESCOPE_ENCODER_PATH to it, or embed and train-prior will use the packaged one")
    for i, (name, kwargs) in enumerate(steps, 1):
        cmd = root.get_command(ctx, name)
        if cmd is None:
            raise typer.BadParameter(f"the CLI has no {name!r} command")
        argv = _argv(kwargs)
        console.rule(f"[bold]{i}/{len(steps)} tunescope {name} {' '.join(argv)}")
        cmd.main(args=argv, prog_name=f"tunescope {name}", standalone_mode=False)
    console.print("[green]done:[/green] encoder, catalog vectors, prior" + (" and generator" if generator else "")
                  + " are consistent; restart the server")


def _argv(options: dict[str, object]) -> list[str]:
    """The command line a user would type for ``options`` (flags on when true, None left out)."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def register(app: typer.Typer) -> None:
    """Add ``train-all`` to the CLI."""
    app.command("train-all")(train_all_command)
