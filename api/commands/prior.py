"""``tunescope train-prior`` and ``tunescope eval-prior``: the Diff4Steer-style diffusion prior.

Both read the rendered catalog (``metadata.jsonl`` + audio, default ``$TUNESCOPE_HOME/
demo-catalog``), embed it once with the configured encoder (cached under ``$TUNESCOPE_HOME/
prior-data/<encoder id>.npz``), and work on its splits: train on ``train``, pick weights on
``validation``, evaluate on ``test``. ``train-prior`` may learn from several catalogs (extra
renders); ``eval-prior --catalog`` may evaluate on another one, e.g. a render of the test pieces
with the held-out soundfont (``demo-catalog --split test --soundfont heldout``); other catalogs
keep their own embedding cache under ``prior-data/<path digest>/``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.settings import Settings, get_settings
from api.wiring import build_encoder
from retrieval.search.generative import GenerativeConfig

console = Console(stderr=True)


def _bar(label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                    TimeRemainingColumn(), console=console)


def _embedded(settings: Settings, catalogs: list[Path | None], enc: Any, crop_s: float | None,
              extra_captions: int) -> list[Any]:
    """The catalogs embedded (``None``: the demo catalog), one EmbeddedCatalog each.

    The catalog database's stored vectors are read once for all of them. Catalogs other than
    the demo catalog (evaluation renders, extra renders) keep their own cache under
    ``prior-data/<path digest>/``, so using them does not throw away the demo catalog's.
    """
    from retrieval.prior.data import embed_catalog, stored_embeddings

    default = settings.home / "demo-catalog"
    stored = {} if crop_s else stored_embeddings(settings.resolved_database_url, enc.id, enc.dim)
    if stored:
        console.print(f"reusing {len(stored):,} stored whole-track embeddings of {enc.id} from the catalog database")
    out = []
    for catalog in catalogs:
        catalog = catalog or default
        cache = settings.home / "prior-data"
        if Path(catalog).resolve() != default.resolve():
            cache = cache / hashlib.sha256(str(Path(catalog).resolve()).encode()).hexdigest()[:12]
        with _bar(f"embedding {Path(catalog).name}") as bar:
            task = bar.add_task("embed", total=None, info="")
            out.append(embed_catalog(enc, catalog, cache, crop_s=crop_s or None,
                                     extra_captions=extra_captions, stored=stored,
                                     progress=lambda d, n, b=bar, t=task: b.update(t, completed=d, total=n)))
    return out


@contextmanager
def _domain_errors() -> Iterator[None]:
    """A missing catalog or prior is the user's to fix: one readable line, exit code 2."""
    from retrieval.errors import RetrievalError

    try:
        yield
    except RetrievalError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e


CROP_HELP = ("Embed only the middle N s of each track (0, the default: whole tracks, as the index "
             "holds them; stored embeddings in the catalog database are reused).")
EXTRA_HELP = "Training-style captions drawn per track from its facts, on top of the shipped ones."


def train_prior_command(
    catalog: list[Path] = typer.Option([], "--catalog", help="Catalog folder with metadata.jsonl; repeat to "
                                       "learn from several (e.g. extra renders of the training pieces)."),
    crop_s: float = typer.Option(0.0, "--crop-s", min=0.0, help=CROP_HELP),
    extra_captions: int = typer.Option(16, "--extra-captions", min=0, help=EXTRA_HELP),
    steps: int = typer.Option(6000, "--steps", min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    mean_head: bool = typer.Option(True, "--mean-head/--no-mean-head",
                                   help="Also learn the conditional mean (used by generative search)."),
    captions: int = typer.Option(64, "--captions-per-track", min=1, help="At most this many pairs per track."),
    width: int = typer.Option(192, "--width", min=2),
    depth: int = typer.Option(3, "--depth", min=1),
    prediction: str = typer.Option("sample", "--prediction", help="epsilon, sample or v_prediction."),
    scheduler: str = typer.Option("ddim", "--scheduler", help="Default sampler: ddim, dpm, euler, unipc."),
    sample_steps: int = typer.Option(8, "--sample-steps", min=1, help="Default denoising steps."),
    guidance: float = typer.Option(2.0, "--guidance", help="Default guidance scale (card)."),
    negative_guidance: float = typer.Option(0.5, "--negative-guidance", min=0.0,
                                            help="Default negative guidance scale (card): 0.5 removes a "
                                            "negated attribute and keeps most of the request (RESULTS.md)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out", help="Weights file (default: one per encoder id)."),
) -> None:
    """Train the diffusion prior of the configured encoder on the catalog's train split."""
    import torch

    from retrieval.prior import prior_weights_path
    from retrieval.prior.data import concat_pairs
    from retrieval.prior.model import PriorConfig
    from retrieval.prior.training import TrainConfig, save_prior, train_prior

    settings = get_settings()
    enc = build_encoder(settings)
    catalogs = list(catalog) or [settings.home / "demo-catalog"]
    with _domain_errors():
        cats = _embedded(settings, list(catalogs), enc, crop_s, extra_captions)
    train, val = concat_pairs(cats, "train", captions), concat_pairs(cats, "validation", captions)
    if not len(train):
        console.print("[red]error:[/red] the catalog has no train-split tracks with captions "
                      "(metadata.jsonl rows need \"split\": \"train\" and \"captions\")")
        raise typer.Exit(2)
    if not len(val):
        console.print("note: no validation-split pairs; the training loss picks the weights")
    config = PriorConfig(dim=enc.dim, width=width, depth=depth, prediction_type=prediction,
                         mean_head=mean_head)
    tc = TrainConfig(steps=steps, batch_size=batch_size, seed=seed)
    console.print(f"{enc.id}: {len(train)} train pairs, {len(val)} validation pairs; "
                  f"{torch.get_num_threads()} threads")
    with _bar("training prior") as bar:
        task = bar.add_task("train", total=steps, info="")
        state = {"val": float("nan")}

        def progress(step: int, m: dict[str, float]) -> None:
            state["val"] = m.get("val_loss", state["val"])
            if step % 20 == 0 or "val_loss" in m:
                bar.update(task, completed=step,
                           info=f"loss {m['loss']:.4f} val {state['val']:.4f}")

        model, history = train_prior(train, val if len(val) else None, config, tc, progress)
    path = out or prior_weights_path(enc.id)
    card = _prior_card(enc.id, catalog, catalogs, cats, train, val, history, tc, dict(
        steps=steps, batch_size=batch_size, width=width, depth=depth, prediction=prediction,
        extra_captions=extra_captions, captions=captions, crop_s=crop_s, guidance=guidance,
        negative_guidance=negative_guidance, mean_head=mean_head, seed=seed, scheduler=scheduler,
        sample_steps=sample_steps))
    save_prior(model, path, card)
    console.print(f"wrote {path} ({model.num_parameters():,} parameters, best step "
                  f"{history['best_step']}, val loss {history['best_val_loss']:.4f}, "
                  f"{history['seconds']:.0f} s)")


def _prior_card(encoder_id: str, given: list[Path], catalogs: list[Path], cats: list[Any], train: Any,
                val: Any, history: dict[str, Any], tc: Any, o: dict[str, Any]) -> dict[str, Any]:
    """The model card saved beside the prior: data, the exact command, training and sampling."""
    return {
        "name": "tunescope diffusion prior", "encoder_id": encoder_id,
        "data": {"catalog": str(catalogs[0]), "catalogs": [str(Path(c).resolve()) for c in catalogs],
                 "train_pairs": len(train), "validation_pairs": len(val),
                 "captions_per_track": o["captions"], "extra_captions": o["extra_captions"],
                 "tracks": sum(len(c.rows) for c in cats), "audio_crop_s": o["crop_s"] or None},
        "command": "tunescope train-prior " + "".join(f"--catalog {c} " for c in given)
                   + f"--steps {o['steps']} --batch-size {o['batch_size']} --width {o['width']} "
                   f"--depth {o['depth']} --prediction {o['prediction']} --extra-captions {o['extra_captions']} "
                   f"--captions-per-track {o['captions']} --crop-s {o['crop_s']:g} --guidance {o['guidance']:g} "
                   f"--negative-guidance {o['negative_guidance']:g} "
                   f"--{'' if o['mean_head'] else 'no-'}mean-head --seed {o['seed']}",
        "train_config": tc, "best_step": history["best_step"],
        "best_val_loss": round(history["best_val_loss"], 5), "train_seconds": history["seconds"],
        "val_loss_history": history["val_loss"],
        "sampling": {"scheduler": o["scheduler"], "steps": o["sample_steps"], "guidance": o["guidance"],
                     "negative_guidance": o["negative_guidance"]},
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


_DEFAULT = GenerativeConfig()  # numpy-only module: cheap at CLI start


def eval_prior_command(
    catalog: Path | None = typer.Option(None, "--catalog", help="Catalog folder with metadata.jsonl (the "
                                        "evaluation set is its --split rows)."),
    train_catalog: list[Path] = typer.Option([], "--train-catalog",
                                             help="Catalog(s) the regression baseline trains on (default: those in "
                                             "the prior's card when it lists them, else --catalog). Give the "
                                             "prior's own catalogs when --catalog is an evaluation render."),
    split: str = typer.Option("test", "--split", help="test (report) or validation (tuning)."),
    crop_s: float | None = typer.Option(None, "--crop-s", min=0.0,
                                        help=CROP_HELP + " Default: as the prior was trained."),
    seeds: int = typer.Option(8, "--seeds", min=1, max=64),
    guidance: float | None = typer.Option(None, "--guidance", help="Default: the prior's card."),
    negative_guidance: float | None = typer.Option(None, "--negative-guidance"),
    fusion: str = typer.Option("adaptive", "--fusion", help="adaptive, likelihood, rrf, mean_sim or max_sim."),
    mmr_lambda: float = typer.Option(_DEFAULT.mmr_lambda or 1.0, "--mmr", help="MMR lambda (1 = no diversity)."),
    mmr_broad: float | None = typer.Option(None, "--mmr-broad", min=0.0, max=1.0,
                                           help="adaptive: MMR lambda of a fully broad query."),
    mmr_window: int = typer.Option(_DEFAULT.mmr_window, "--mmr-window", min=1,
                                   help="Each MMR pick among the best N remaining candidates."),
    spread_center: float = typer.Option(_DEFAULT.spread_center, "--spread-center",
                                        help="adaptive: seed spread at which text and mean weigh the same."),
    kde_weight: float = typer.Option(_DEFAULT.kde_weight, "--kde-weight", help="adaptive: weight of the seed KDE."),
    combine: str = typer.Option(_DEFAULT.combine, "--combine",
                                help="adaptive: mix the scores as z-scores (z) or as reciprocal ranks (rank)."),
    rrf_k: float = typer.Option(_DEFAULT.rrf_k, "--rrf-k", min=0.0,
                                help="The reciprocal-rank constant (rrf fusion, --combine rank)."),
    query_weight: float = typer.Option(1.0, "--query-weight", help="rrf/mean_sim: weight of the query's own list."),
    steps: int | None = typer.Option(None, "--steps", help="Denoising steps (default: card)."),
    scheduler: str | None = typer.Option(None, "--scheduler",
                                         help="Sampler: ddim, dpm, euler, unipc (default: card)."),
    prior_path: Path | None = typer.Option(None, "--prior", help="Prior weights (default: per encoder)."),
    regression_steps: int = typer.Option(1500, "--regression-steps", min=1),
    repeats: int = typer.Option(3, "--repeats", min=1, max=20,
                                help="Generative runs with different sampling seeds; figures are their mean."),
    sample_seed: int = typer.Option(0, "--sample-seed", help="Sampling seed of the first run (run r: + 1000 r)."),
    out: Path | None = typer.Option(None, "--out", help="Write the full results as JSON here."),
    sweep: list[str] = typer.Option([], "--sweep", help="KEY=V1,V2,...: evaluate every combination of these "
                                    "generative settings (repeatable; e.g. --sweep combine=z,rank --sweep "
                                    "mmr_lambda=0.8,0.9) and pick one by the rule that chose the defaults. Run "
                                    "it on --split validation."),
) -> None:
    """Generative retrieval vs. direct text retrieval vs. a regression MLP, on one split.

    With --sweep: a table of generative settings against the same baselines, and the one the
    selection rule picks (how the defaults of GenerativeConfig were chosen).
    """
    from retrieval.evaluation.prior_report import (
        CardSettings,
        NoRegressionDataError,
        PriorEvalOptions,
        evaluate_prior,
    )
    from retrieval.prior.data import SPLITS

    if split not in SPLITS:
        raise typer.BadParameter(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    with _domain_errors():  # bad settings: one readable line, before any work
        gen_cfg = GenerativeConfig(seeds=seeds, guidance=guidance, negative_guidance=negative_guidance,
                                   fusion=fusion, mmr_lambda=None if mmr_lambda >= 1 else mmr_lambda,
                                   mmr_lambda_broad=mmr_broad, mmr_window=mmr_window,
                                   spread_center=spread_center,
                                   kde_weight=kde_weight, query_weight=query_weight, steps=steps,
                                   combine=combine, rrf_k=rrf_k)
        sweep_cfgs = _sweep_configs(gen_cfg, sweep)
    settings = get_settings()
    enc = build_encoder(settings)
    prior = _prior_for(enc, prior_path, scheduler)
    card = CardSettings.of(prior, crop_s)
    train_catalogs = card.regression_catalogs(list(train_catalog), catalog)
    with _domain_errors():
        others = [c for c in train_catalogs if c != catalog]
        cat, *embedded = _embedded(settings, [catalog, *others], enc, card.crop_s, card.extra_captions)
        by_path = dict(zip(others, embedded, strict=True))
        train_cats = [cat if c == catalog else by_path[c] for c in train_catalogs]
    default = settings.home / "demo-catalog"
    options = PriorEvalOptions(split=split, config=gen_cfg, sweep=sweep_cfgs, repeats=repeats,
                               sample_seed=sample_seed, regression_steps=regression_steps,
                               captions_per_track=card.captions_per_track, catalog=str(catalog or default),
                               train_catalogs=tuple(str(c or default) for c in train_catalogs))
    with _domain_errors(), _bar("sweep") if sweep_cfgs else nullcontext() as bar:
        task = bar.add_task("sweep", total=len(sweep_cfgs), info="") if bar else None
        try:
            report = evaluate_prior(cat, train_cats, enc, prior, options,
                                    (lambda label: bar.update(task, advance=1, info=label)) if bar else None)
        except NoRegressionDataError:
            console.print("[red]error:[/red] no train-split pairs for the regression baseline in "
                          f"{', '.join(str(c or 'the demo catalog') for c in train_catalogs)}; an evaluation "
                          "render holds no training pieces: give the prior's catalog with --train-catalog")
            raise typer.Exit(2) from None
    if sweep_cfgs:
        _print_sweep(report)
    else:
        _print_report(report)
    if out:
        _write_report(out, report, sweep=bool(sweep_cfgs))


def _sweep_configs(base: GenerativeConfig, specs: list[str]) -> dict[str, GenerativeConfig]:
    """``--sweep KEY=V1,V2`` specs as named configs (every combination) over ``base``."""
    from retrieval.errors import RetrievalError
    from retrieval.evaluation.sweep import parse_sweep

    try:
        overrides = parse_sweep(specs)
    except ValueError as e:
        raise RetrievalError(str(e)) from None
    return {", ".join(f"{k}={v}" for k, v in o.items()): replace(base, **o) for o in overrides}


def _prior_for(enc: Any, prior_path: Path | None, scheduler: str | None) -> Any:
    """The prior to evaluate (``--prior`` or the one trained for ``enc``), checked to match it."""
    from retrieval.prior import prior_weights_path
    from retrieval.prior.pipeline import PriorPipeline

    with _domain_errors():
        prior = PriorPipeline.from_pretrained(prior_path or prior_weights_path(enc.id), scheduler=scheduler)
    if prior.encoder_id != enc.id:
        raise typer.BadParameter(f"the prior was trained for {prior.encoder_id}, not {enc.id}")
    return prior


def _write_report(out: Path, report: dict[str, Any], *, sweep: bool) -> None:
    """The full results as JSON (dataclasses written as their fields)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        out.write_text(json.dumps(report, indent=1))
    else:
        out.write_text(json.dumps(report, indent=1, default=lambda o: getattr(o, "__dict__", str(o))))
    console.print(f"wrote {out}")


def _print_sweep(report: dict[str, Any]) -> None:
    """The sweep's table (one row per setting, best first), the baselines and the pick."""
    rows, split, repeats = report["rows"], report["split"], report["repeats"]
    table = Table(title=f"sweep on {split} ({report['tracks']} tracks, generative = mean of {repeats} sampling "
                        "seeds): nDCG@10 minus the better baseline per query set, the worst of them, broad diversity")
    cols = ["gap captions", "gap paraphrases", "gap attributes", "gap broad", "worst gap", "broad ILD",
            "broad facet_coverage"]
    table.box, table.pad_edge, table.collapse_padding = box.SIMPLE_HEAD, False, True  # fits 80 columns
    table.add_column("setting", min_width=18, overflow="fold")
    for c in ["capt.", "para.", "attr.", "broad", "worst", "ILD", "cov.", "ok"]:
        table.add_column(c, justify="right", width=3 if c == "ok" else 6, no_wrap=True)
    for r in rows:
        cells = ("-" if r.get(c) is None else f"{r[c]:+.3f}" if "gap" in c else f"{r[c]:.3f}" for c in cols)
        table.add_row(r["setting"].replace(", ", "\n"), *cells, "yes" if r["passes"] else "no")
    Console().print(table)
    t, g = report["baselines"]["text"]["broad"], report["baselines"]["regression"]["broad"]
    Console().print("ILD / cov.: broad-query intra-list diversity / facet coverage; ok: passes the diversity "
                    "condition. "
                    f"Baselines: broad ILD text {t['ILD']:.3f} / regression {g['ILD']:.3f}, facet coverage "
                    f"{t['facet_coverage']:.3f} / {g['facet_coverage']:.3f}. Rule: among settings more diverse "
                    "than the regression and covering more facets than both, the smallest worst gap.")
    winner = report["selected"]
    Console().print(f"selected: {winner}" if winner else
                    "selected: none (no setting passes the diversity condition)")


def _print_report(report: dict[str, Any]) -> None:
    res = report["results"]
    table = Table(title=f"eval-prior on {report['split']} ({report['tracks']} tracks, "
                        f"{report['encoder_id']})")
    table.add_column("metric")
    for name in res:
        table.add_column(name, justify="right")
    for qset, metrics in (("captions", ("R@10", "nDCG@10", "ILD", "distinct_collection",
                                        "distinct_tune_type", "distinct_ensemble")),
                          ("paraphrases", ("R@10", "nDCG@10", "ILD")),
                          ("attributes", ("nDCG@10", "nDCG@10 first 19", "P@10", "ILD",
                                          "distinct_tune_type", "distinct_ensemble")),
                          ("broad", ("nDCG@10", "nDCG@10 first 20", "P@10", "ILD", "facet_coverage",
                                     "facet_coverage first 20",
                                     "distinct_collection", "distinct_tune_type",
                                     "distinct_ensemble"))):
        for m in metrics:
            # A catalog whose metadata matches none of a set's queries has no figures for it.
            cells = [res[n].get(qset, {}).get(m) for n in res]
            table.add_row(f"{qset} {m}", *("-" if c is None else f"{c:.3f}" for c in cells))
    Console().print(table)
    paired = Table(title="generative minus baseline, per query, mean and 95% bootstrap interval")
    paired.add_column("query set / metric")
    for other in report["paired"]:
        paired.add_column(f"- {other}", justify="right")
    first = next(iter(report["paired"].values()), {})
    for key in first:
        cells = []
        for other in report["paired"]:
            d = report["paired"][other][key]
            cells.append(f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")
        paired.add_row(f"{key} ({first[key]['queries']})", *cells)
    Console().print(paired)
    steer = Table(title="negative prompt: share of top 10 with the negated attribute, and share "
                        "that still answers the request")
    for c in ("query / negative", "method", "negated before", "after", "catalog share",
              "request kept before", "after"):
        steer.add_column(c)
    for method, rows in report["negative_steering"].items():
        for q, v in rows.items():
            steer.add_row(q, method, f"{v['before']:.2f}", f"{v['after']:.2f}",
                          f"{v['catalog_share']:.2f}", f"{v['kept_before']:.2f}",
                          f"{v['kept_after']:.2f}")
    Console().print(steer)
    spread = res["generative"].get("spread", {})
    if report.get("repeats", 1) > 1 and spread:
        Console().print(f"generative: mean of {report['repeats']} sampling seeds "
                        f"{report['sample_seeds']}; standard deviation over them: "
                        + ", ".join(f"{k} {v:.3f}" for k, v in spread.items() if "nDCG" in k))
    gap = ", ".join(f"{k} {v:.3f}" for k, v in report["modality_gap"].items())
    Console().print(f"modality gap (mean cosine to the matching audio): {gap}")
    Console().print(f"mean seed spread {report['mean_seed_spread']:.3f}; {report['seconds']:.0f} s")


def register(app: typer.Typer) -> None:
    """Add ``train-prior`` and ``eval-prior`` to the CLI."""
    app.command("train-prior")(train_prior_command)
    app.command("eval-prior")(eval_prior_command)
