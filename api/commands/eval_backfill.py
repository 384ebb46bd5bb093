"""``tunescope eval-backfill``: holes in a copy of the catalog, and how well backfill fills them.

See :mod:`generation.backfill.evaluation` for what is measured. ``--fit-detector`` also fits
the weak-match detector on every (hole, query) pair and writes the file that the search
service loads for this encoder (``retrieval/search/weights/weak-match-<encoder>.json``);
the AUROC printed is always the leave-one-hole-out one, never the fit's own.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.settings import get_settings
from api.wiring import build_encoder, load_prior

console = Console(stderr=True)
_METHOD_COLS = (("win_rate", "win rate", "{:.2f}"), ("ceiling_ratio", "x removed", "{:.3f}"),
                ("attr_score", "attrs (score)", "{:.2f}"), ("attr_audio", "attrs (audio)", "{:.2f}"),
                ("above_gate", "above gate", "{:.2f}"), ("longest_copied_run", "copied run", "{:.0f}"),
                ("diversity", "diversity", "{:.3f}"), ("kad", "KAD x100", "{:.3f}"),
                ("pitch_class_entropy", "PC entropy", "{:.2f}"),
                ("scale_consistency", "scale cons.", "{:.3f}"),
                ("groove_consistency", "groove cons.", "{:.3f}"))


def eval_backfill_command(
    candidates: int = typer.Option(4, "--candidates", min=1, max=16,
                                   help="Candidates per hole query (and per baseline)."),
    duration: float = typer.Option(20.0, "--duration", min=2.0, max=60.0, help="Seconds per candidate."),
    rounds: int = typer.Option(6, "--rounds", min=1, max=12, help="Candidate-search rounds of the generator."),
    query_leads: bool = typer.Option(True, "--query-leads/--no-query-leads",
                                     help="Each candidate list's first keeper is the one closest to the query."),
    query_weight: float = typer.Option(0.5, "--query-weight", min=0.0, max=1.0,
                                       help="The query's share in the generator's and the re-ranking's score."),
    oversample: int = typer.Option(2, "--oversample", min=1, max=8, help="Candidates generated per keeper."),
    search_soundfonts: bool = typer.Option(False, "--search-soundfonts",
                                           help="The generator searches every installed training soundfont "
                                                "(default: TimGM6mb only)."),
    search_targets: bool = typer.Option(False, "--search-targets",
                                        help="The generator refits which prior sample conditions a candidate "
                                             "(default: uniform)."),
    holes: list[str] = typer.Option(None, "--hole", help="Only these holes (repeatable; default: all six)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Run the five baselines too."),
    corpus_pieces: int = typer.Option(300, "--corpus-pieces", min=20,
                                      help="Corpus melodies for the n-gram model and the statistics."),
    fit_detector: bool = typer.Option(False, "--fit-detector",
                                      help="Fit the weak-match detector on all pairs and write its file."),
    detector_only: bool = typer.Option(False, "--detector-only",
                                       help="Only the weak-match detector (no generation, no novelty index)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(None, "--out", help="Write the full report (JSON) here."),
) -> None:
    """Make holes in a copy of the catalog; measure weak-match detection and generated fills against baselines."""
    from generation.backfill.evaluation import HOLES, EvalConfig, run_eval
    from generation.backfill.novelty import NgramIndex
    from retrieval.search.weak_match import detector_path
    from retrieval.search.weak_match import fit_detector as fit

    settings = get_settings()
    chosen = tuple(holes) if holes else HOLES
    unknown = [h for h in chosen if h not in HOLES]
    if unknown:
        raise typer.BadParameter(f"unknown hole(s) {unknown}; choose from {list(HOLES)}", param_hint="--hole")
    path = settings.novelty_index_path
    if not detector_only and not path.is_file():
        console.print(f"[red]no novelty index at {path}: run `tunescope build-novelty-index` first[/red]")
        raise typer.Exit(2)
    encoder = build_encoder(settings)
    prior = load_prior(encoder.id)
    ngram = None if detector_only else NgramIndex.load(path)
    cfg = EvalConfig(n_candidates=candidates, duration_s=duration, search_rounds=rounds,
                     corpus_pieces=corpus_pieces, seed=seed, holes=chosen, baselines=baselines,
                     generate=not detector_only, query_weight=query_weight, oversample=oversample,
                     query_leads=query_leads, search_soundfonts=search_soundfonts,
                     search_targets=search_targets)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("hole queries", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_eval(settings.resolved_database_url, encoder, prior, ngram, config=cfg,
                          progress=progress)
    report["command"] = "tunescope " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    _print(report)
    if fit_detector:
        rows = report["detector_rows"]
        det = fit([r["signals"] for r in rows], [r["weak"] for r in rows], encoder_id=encoder.id,
                  fit_info={"command": report["command"], "pairs": len(rows),
                            "loo_auroc": report["detector"]["auroc"],
                            "catalog_tracks": report["catalog_tracks"]})
        written = det.save(detector_path(encoder.id))
        console.print(f"weak-match detector for {encoder.id} written to {written}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=float) + "\n")
        console.print(f"report written to {out}")


def _print(report: dict) -> None:
    d = report["detector"]
    c = Console(width=160)
    t = Table(title=f"weak-match detector, leave-one-hole-out ({d['hole_queries']} hole / "
                    f"{d['covered_queries']} covered query pairs)", box=box.SIMPLE)
    for col in ("rule", "AUROC"):
        t.add_column(col)
    t.add_row("fitted (top1, top10, gap, prior_nn, named, named_none)", f"{d['auroc']:.3f}")
    t.add_row("fitted, without prior_nn (plain search, backfill off)", f"{d['auroc_scores_only']:.3f}")
    t.add_row("fitted, embeddings only (without named)", f"{d['auroc_without_named']:.3f}")
    t.add_row("uncalibrated top1 < 0.3", f"{d['auroc_top1_rule']:.3f}")
    c.print(t)
    if not report["queries"]:
        return
    m = Table(title=f"hole queries: {len(report['queries'])}, {report['catalog_tracks']} catalog tracks, "
                    f"{report['seconds']:.0f} s", box=box.SIMPLE)
    m.add_column("method")
    for _, label, _ in _METHOD_COLS:
        m.add_column(label, justify="right")
    for name, s in report["summary"].items():
        m.add_row(name, *(fmt.format(s[k]) if k in s else "-" for k, _, fmt in _METHOD_COLS))
    c.print(m)
    g = report["summary"].get("generated", {})
    gates = {k.removeprefix("rejected_"): v for k, v in g.items() if k.startswith("rejected_")}
    if gates:
        c.print("generated candidates refused, by gate (one can be refused by several): "
                + ", ".join(f"{k} {v:.2f}" for k, v in gates.items()))
    if math.isfinite(g.get("search_above_bar", math.nan)):
        c.print(f"inside the generator's search, before it chose what to hand the gate: "
                f"{g['search_above_bar']:.2f} of its candidates sat above the catalog bar")
    ra = report.get("reader") or {}
    if ra:
        c.print("the audio reader on real tracks it was not fitted on (its own error; 'attrs (audio)' "
                "reads generated audio with it): " + ", ".join(
                    f"{k} {v['accuracy']:.2f} (balanced {v['balanced']:.2f}, {v['reader']}, {v['tracks']} tracks)"
                    for k, v in ra.items()))
    cs = report.get("corpus_stats") or {}
    if cs:
        c.print("corpus melodies: " + ", ".join(f"{k} {v:.3f}" for k, v in cs.items()))
    h = Table(title="per hole query (generated)", box=box.SIMPLE)
    for col in ("hole", "query", "best remaining", "best removed", "best kept", "kept/made", "win"):
        h.add_column(col)
    for q in report["queries"]:
        g = q["methods"]["generated"]
        h.add_row(q["hole"], q["query"], f"{q['best_remaining']:.3f}", f"{q['best_removed']:.3f}",
                  f"{g['best_cos']:.3f}", f"{g['kept']}/{g['made']}", "yes" if g["win"] else "no")
    c.print(h)


def register(app: typer.Typer) -> None:
    """Add ``eval-backfill`` to the CLI."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app.command("eval-backfill")(eval_backfill_command)
