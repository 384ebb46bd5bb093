"""``tunescope embed``, ``train-encoder`` and ``eval-encoder``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.settings import get_settings
from api.wiring import build_encoder

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console)


def _named_tasks(bar: Progress) -> Callable[[str, int, int], None]:
    """``progress(name, done, total)`` that keeps one "rendering <name>" bar per name."""
    tasks: dict[str, int] = {}

    def prog(name: str, d: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(f"rendering {name}", total=total)
        bar.update(tasks[name], completed=d)

    return prog


def embed_command(
    encoder: str = typer.Option(None, "--encoder", help="Encoder name (default: TUNESCOPE_ENCODER)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=1024, help="Tracks per transaction."),
) -> None:
    """Embed every catalog track that lacks a vector for the encoder (resumable)."""
    from api.commands.catalog import open_from_settings
    from index.store import AudioStore
    from retrieval.embedding import embed_missing, missing_track_ids

    settings = get_settings()
    factory = open_from_settings(settings)
    enc = build_encoder(settings, encoder)
    with factory() as s:
        todo = len(missing_track_ids(s, enc.id))
    if todo == 0:
        console.print(f"every track already has an embedding for {enc.id}")
        return
    t = time.time()
    with _progress() as bar:
        task = bar.add_task(f"embedding with {enc.id}", total=todo)
        n = embed_missing(factory, enc, AudioStore(settings.audio_dir), batch_size=batch_size,
                          progress=lambda d, total: bar.update(task, completed=d))
    console.print(f"embedded {n} tracks with {enc.id} in {time.time() - t:.0f} s")


def train_encoder_command(
    out: Path = typer.Option(None, "--out", help="Weights file (default: the packaged clap-mini)."),
    size: int = typer.Option(2400, "--size", min=10, help="Training pieces (train split only)."),
    renders: int = typer.Option(2, "--renders", min=1, max=8, help="Renders per training piece."),
    val_size: int = typer.Option(200, "--val-size", min=10, help="Validation pieces."),
    epochs: int = typer.Option(40, "--epochs", min=1, max=500),
    budget_min: float = typer.Option(30.0, "--budget-min", min=1.0, help="Training time budget (minutes)."),
    seed: int = typer.Option(0, "--seed"),
    cache: Path = typer.Option(None, "--cache", help="Feature cache folder (default: $TUNESCOPE_HOME/encoder-data)."),
    v2: bool = typer.Option(False, "--v2", help="Encoder v2: render variety, production chain, varied "
                            "captions, accent-free rhythm features, a tune-type head."),
    extra_captions: int = typer.Option(0, "--extra-captions", min=0, max=32,
                                       help="Fresh captions per clip beside the catalog's (v2: varied ones)."),
    render_only: bool = typer.Option(False, "--render-only", help="Build the feature caches and stop."),
    aux_weight: float = typer.Option(0.3, "--aux-weight", min=0.0, max=10.0,
                                     help="Weight of the auxiliary attribute heads (instrument, tempo, "
                                     "mode, metre...)."),
    rhythm: int = typer.Option(None, "--rhythm", min=1, max=3,
                               help="Rhythm-branch input: 1 onset envelope, 2 adds accent-free onset "
                               "periodicities, 3 adds pitch-change periodicities (default: 2 with --v2, else 1)."),
    text_only: bool = typer.Option(False, "--text-only", help="Retrain only the text projection of "
                                   "--base against its frozen audio tower (v2 caches, varied captions): "
                                   "catalog vectors stay exactly as they are."),
    base: Path = typer.Option(None, "--base", help="With --text-only: the weights whose audio tower is "
                              "kept (default: the packaged clap-mini)."),
    steps: int = typer.Option(3000, "--steps", min=1, max=100_000, help="With --text-only: optimiser steps."),
    lr: float = typer.Option(None, "--lr", min=1e-6, max=1.0,
                             help="Peak learning rate (default: 2e-3; with --text-only 5e-4)."),
    prompt_weight: float = typer.Option(0.0, "--prompt-weight", min=0.0, max=10.0,
                                        help="Weight of the prompt loss: each clip's metre, mode, tempo "
                                        "(and tune type with --v2) classified by short phrasings."),
    init: Path = typer.Option(None, "--init", help="Start from these weights (e.g. the packaged "
                              "clap-mini) instead of random: a grown rhythm input starts at zero "
                              "weight, so training begins from exactly the old model."),
) -> None:
    """Train the default encoder (clap-mini) on rendered train-split pieces.

    Without --v2 it reproduces the v1 weights (about 45 minutes on 2 CPU cores including
    rendering); the committed v2 weights' sidecar JSON records the exact options they used.
    With --text-only it retrains the text side alone (minutes, once the v2 caches exist).
    """
    from api.encoder_jobs import train_default_encoder, train_text_head
    from retrieval.encoders.default import DEFAULT_WEIGHTS
    from retrieval.encoders.training import TextHeadConfig, TrainConfig

    settings = get_settings()
    if text_only:
        info = train_text_head(cache or settings.home / "encoder-data", base or DEFAULT_WEIGHTS,
                               out or DEFAULT_WEIGHTS, size=size, val_size=val_size,
                               extra_captions=extra_captions, seed=seed,
                               cfg=TextHeadConfig(steps=steps, lr=lr or 5e-4, seed=seed),
                               log=lambda s: console.print(s))
        console.print_json(json.dumps(info["best_metrics"]))
        return
    cfg = TrainConfig(epochs=epochs, time_budget_s=budget_min * 60, seed=seed, lr=lr or TrainConfig.lr,
                      rhythm=rhythm or (2 if v2 else 1), tune_type_head=v2, aux_weight=aux_weight,
                      prompt_weight=prompt_weight)
    with _progress() as bar:
        prog = _named_tasks(bar)
        info = train_default_encoder(cache or settings.home / "encoder-data", out or DEFAULT_WEIGHTS,
                                     size=size, renders=renders, val_size=val_size, seed=seed, cfg=cfg,
                                     v2=v2, extra_captions=extra_captions, render_only=render_only, init=init,
                                     log=lambda s: bar.console.print(s), progress=prog)
    console.print_json(json.dumps(info.get("best_metrics", info)))


def eval_encoder_command(
    encoder: str = typer.Option("default", "--encoder", help="Only the default encoder is supported here."),
    weights: Path = typer.Option(None, "--weights", help="Weights file (default: the packaged clap-mini)."),
    size: int = typer.Option(400, "--size", min=10, help="Test pieces."),
    soundfont: str = typer.Option("heldout", "--soundfont",
                                  help="'heldout' (never used in training) or 'train' (training soundfonts)."),
    seed: int = typer.Option(7, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    cache: Path = typer.Option(None, "--cache"),
    suite: str = typer.Option(None, "--suite", help="'v2': the held-out soundfont, in-distribution and "
                              "held-out variant sets, for the encoder and --baseline, in one run."),
    baseline: Path = typer.Option(None, "--baseline", help="Weights compared with --suite (default: the "
                                  "committed v1 weights, retrieval/encoders/weights/clap-mini-v1.safetensors)."),
    out: Path = typer.Option(None, "--out", help="With --suite: also write the whole report as JSON here."),
) -> None:
    """Evaluate on test-split pieces (never trained on), next to a random-ranking baseline."""
    from api.encoder_jobs import evaluate_default_encoder

    if suite is not None:
        _run_suite(suite, weights, baseline, size, seed, cache, as_json, out)
        return

    if encoder != "default":
        raise typer.BadParameter("eval-encoder evaluates the default encoder (features are cached per "
                                 "render); CLAP backends are compared in benchmarks/bench_encoders.py")
    if soundfont not in ("heldout", "train"):
        raise typer.BadParameter(f"--soundfont must be 'heldout' or 'train', got {soundfont!r}")
    settings = get_settings()
    with _progress() as bar:
        task = bar.add_task("rendering test pieces", total=size)
        report = evaluate_default_encoder(cache or settings.home / "encoder-data", weights, size=size,
                                          heldout=soundfont == "heldout", seed=seed,
                                          progress=lambda d, t: bar.update(task, completed=d, total=t))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print_report(report)


def _run_suite(suite: str, weights: Path | None, baseline: Path | None, size: int, seed: int,
               cache: Path | None, as_json: bool, out: Path | None) -> None:
    from api.encoder_jobs import evaluate_suite
    from retrieval.encoders.default import V1_WEIGHTS

    if suite != "v2":
        raise typer.BadParameter(f"--suite must be 'v2', got {suite!r}")
    baseline = baseline or V1_WEIGHTS
    settings = get_settings()
    with _progress() as bar:
        prog = _named_tasks(bar)
        report = evaluate_suite(cache or settings.home / "encoder-data", weights,
                                baseline if baseline.is_file() else None, size=size, seed=seed,
                                log=lambda s: bar.console.print(s), progress=prog)
    if out:
        out.write_text(json.dumps(report, indent=2))
    if as_json:
        print(json.dumps({k: report[k] for k in ("headline", "drop", "size", "seed")}, indent=2))
        return
    print_suite(report)


def print_suite(report: dict) -> None:
    """The suite's headline figures per set and encoder, and the drops (stdout)."""
    out = Console()
    for name, by_enc in report["headline"].items():
        t = Table(title=f"{name} ({report['size']} test pieces x 2 renders)")
        t.add_column("figure")
        ids = list(by_enc)
        for i in ids:
            t.add_column(i)
        t.add_column("random")
        first = report["sets"][name][ids[0]]
        randoms = {"paraphrase -> audio R@10": first["retrieval"]["paraphrase -> audio"]["random"]["R@10"],
                   "paraphrase -> matching P@10":
                       first["retrieval"].get("paraphrase -> matching renders", {}).get("random", {}).get("P@10"),
                   "single-attribute P@10": first["single_attribute"]["mean_random_P@10"],
                   "real descriptions nDCG@10": first["v2"]["real_descriptions"].get("mean_random_nDCG@10")}
        for fig in by_enc[ids[0]]:
            r = randoms.get(fig)
            t.add_row(fig, *[f"{by_enc[i][fig]:.3f}" for i in ids], "" if r is None else f"{r:.3f}")
        out.print(t)
    t = Table(title="drop from in-distribution to the held-out variant (1 - heldout / in-distribution)")
    t.add_column("figure")
    ids = list(report["drop"])
    for i in ids:
        t.add_column(i)
    for fig in report["drop"][ids[0]]:
        t.add_row(fig, *[f"{report['drop'][i][fig]:+.1%}" for i in ids])
    out.print(t)


def print_report(report: dict) -> None:
    """The evaluation as rich tables (stdout)."""
    out = Console()
    out.print(f"[bold]{report['encoder']}[/bold] on {report['n_renders']} renders of "
              f"{report['n_pieces']} test pieces, soundfont: {report['soundfont']}")
    t = Table(title="retrieval (model | random baseline)")
    for c in ("task", "R@1", "R@5", "R@10", "nDCG@10"):
        t.add_column(c)
    for name, m in report["retrieval"].items():
        b = m["random"]
        t.add_row(name, *[f"{m[k]:.3f} | {b[k]:.3f}" for k in ("R@1", "R@5", "R@10", "nDCG@10")])
    out.print(t)
    t = Table(title="single-attribute queries")
    for c in ("query", "P@10", "nDCG@10", "random P@10", "relevant"):
        t.add_column(c)
    for q, m in report["single_attribute"]["queries"].items():
        t.add_row(q, f"{m['P@10']:.2f}", f"{m['nDCG@10']:.2f}", f"{m['random_P@10']:.2f}", str(m["n_relevant"]))
    t.add_row("[bold]mean", f"{report['single_attribute']['mean_P@10']:.3f}",
              f"{report['single_attribute']['mean_nDCG@10']:.3f}",
              f"{report['single_attribute']['mean_random_P@10']:.3f}", "")
    out.print(t)
    t = Table(title="zero-shot attributes")
    for c in ("attribute", "accuracy", "balanced acc.", "majority class", "n"):
        t.add_column(c)
    for a, m in report["zero_shot"].items():
        t.add_row(a, f"{m['accuracy']:.3f}", f"{m['balanced_accuracy']:.3f}", f"{m.get('majority', 0):.3f}",
                  str(m["n"]))
    out.print(t)


def register(app: typer.Typer) -> None:
    """Add ``embed``, ``train-encoder`` and ``eval-encoder`` to the CLI."""
    app.command("embed")(embed_command)
    app.command("train-encoder")(train_encoder_command)
    app.command("eval-encoder")(eval_encoder_command)
