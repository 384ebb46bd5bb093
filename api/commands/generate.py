"""``tunescope generate "a waltz for accordion" --n 8 --out DIR``: the backfill pipeline, offline.

The same pipeline a backfill job runs (prior samples -> generator with its candidate search ->
re-ranking -> novelty gate, :class:`generation.backfill.pipeline.BackfillPipeline`), without a
server or a job queue, and without a catalog if there is none: then the acoustic gate is
skipped (there is nothing to be a copy of) and the melodic gate still applies. Per keeper it
writes ``NN.wav`` (the audio), ``NN.mid`` (the score, the instruments heard) and ``NN.json``
(provenance: prompt, seeds, weights, prior samples, scores, gate values, neighbours), plus
``generation.json`` (the request and every rejection), and prints a table of all candidates.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.settings import Settings, get_settings

if TYPE_CHECKING:
    from generation.backfill.catalog import DatabaseCatalog
    from generation.backfill.pipeline import BackfillPipeline, JobRequest, Outcome

console = Console(stderr=True)


def _attributes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"--attr takes KEY=VALUE (e.g. meter=3/4), got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _catalog(settings: Settings, want: bool | None, encoder_id: str, dim: int) -> DatabaseCatalog | None:
    """The configured catalog when there is one (``want`` None), always (True), never (False)."""
    from generation.backfill.catalog import DatabaseCatalog
    from index.db import open_catalog

    if want is False:
        return None
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        if want:
            raise typer.BadParameter(f"--catalog: there is no catalog database at {url}")
        return None  # do not create an empty database in someone's home just to find nothing
    return DatabaseCatalog(open_catalog(url), encoder_id, dim)


def _build(settings: Settings, catalog: bool | None, rounds: int | None, melody_gate: bool) -> BackfillPipeline:
    from api.wiring import build_encoder, build_generator, load_prior
    from generation.backfill.pipeline import BackfillPipeline

    ngram: Path | None = settings.novelty_index_path if melody_gate else None
    if ngram is not None and not ngram.is_file():  # checked first: loading the models takes seconds
        raise typer.BadParameter(
            f"the melodic novelty index {ngram} does not exist: build it once with `tunescope "
            "build-novelty-index` (about 40 CPU-minutes over all cores), or pass --no-melody-gate to "
            "generate without checking for copied corpus melodies")
    encoder = build_encoder(settings)
    prior = load_prior(encoder.id)
    generator = build_generator(settings, encoder=encoder)
    if rounds is not None:
        if not hasattr(generator, "search_rounds"):
            raise typer.BadParameter(f"--rounds applies to the symbolic generator, not {generator.id!r}")
        generator.search_rounds = rounds  # type: ignore[attr-defined]
    return BackfillPipeline(encoder, prior, generator, ngram=ngram,
                            catalog=_catalog(settings, catalog, encoder.id, encoder.dim))


def generate_command(
    query: str = typer.Argument(..., help="What to make, in words (e.g. \"a slow waltz for accordion\")."),
    n: int = typer.Option(4, "--n", min=1, max=16, help="Keepers wanted (candidates made: 2x)."),
    out: Path = typer.Option(..., "--out", help="Folder for NN.wav, NN.mid, NN.json (created)."),
    duration: float = typer.Option(20.0, "--duration", min=1.0, max=120.0, help="Seconds per candidate."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Same seed, same candidates."),
    attr: list[str] = typer.Option([], "--attr", help="KEY=VALUE, repeatable: meter=3/4, mode=minor, "
                                   "tempo_class=slow, tune_type=jig, ensemble=\"solo fiddle\"."),
    like: int | None = typer.Option(None, "--like", help="A catalog track id to generate like (needs a catalog)."),
    catalog: bool | None = typer.Option(None, "--catalog/--no-catalog", help="Gate against the configured "
                                        "catalog's audio (default: when a catalog database exists)."),
    rounds: int | None = typer.Option(None, "--rounds", min=1, max=8, help="Candidate-search rounds of the "
                                      "symbolic generator (default 3; 1: no search, fastest)."),
    melody_gate: bool = typer.Option(True, "--melody-gate/--no-melody-gate", help="Reject melodies copied from "
                                     "the corpus (needs `tunescope build-novelty-index` once)."),
) -> None:
    """Generate music for a query without a server: WAV, MIDI and provenance JSON per keeper.

    Runs the backfill pipeline (prior samples, the generator's candidate search, re-ranking,
    novelty gate) and keeps the best N candidates that are new: no melody copied from the corpus
    and, when a catalog exists, no sound too close to a catalog track.
    """
    from generation.backfill.pipeline import JobRequest
    from generation.errors import GenerationError

    settings = get_settings()
    request = JobRequest(n, duration, _attributes(attr), like)
    with console.status("loading the encoder, the prior and the generator"):
        pipeline = _build(settings, catalog, rounds, melody_gate)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        outcomes = _run(pipeline, query, request, seed)
    except GenerationError as e:
        raise typer.BadParameter(str(e)) from e
    kept = [o for o in outcomes if o.kept]
    for k, o in enumerate(kept, 1):
        _write(out, k, o, pipeline, query, request, seed)
    _summary(out, outcomes, query, request, seed, pipeline)
    _table(outcomes, f"{query!r}: {len(kept)} kept of {len(outcomes)} gated, {time.monotonic() - t0:.1f} s")
    console.print(f"wrote {len(kept)} x (.wav, .mid, .json) to {out}", highlight=False)
    if len(kept) < n:
        console.print(f"[yellow]only {len(kept)} of {n} candidates passed the novelty gate[/yellow]")


def _run(pipeline: BackfillPipeline, query: str, request: JobRequest, seed: int) -> list[Outcome]:
    """The pipeline's outcomes, with a progress display of its stages."""
    from generation.backfill.worker import Report

    outcomes = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("sampling the prior", total=None)
        for item in pipeline.run(query, request, seed):
            if isinstance(item, Report):
                p = item.progress
                if p.get("stage") == "generating":
                    bar.update(task, description=f"generating {p['generating']} candidates")
                elif "generated" in p:
                    bar.update(task, total=p["generated"], completed=p["kept"] + p["rejected"],
                               description=f"gating: {p['kept']} kept, {p['rejected']} rejected")
            else:
                outcomes.append(item)
    return outcomes


def _write(out: Path, k: int, o: Outcome, pipeline: BackfillPipeline, query: str, request: JobRequest,
           seed: int) -> None:
    from generation.symbolic.score_export import score_to_midi

    keeper = pipeline.keeper(o, request)
    (out / f"{k:02d}.wav").write_bytes(keeper.audio)
    meta = dict(keeper.metadata)
    score = meta.pop("score", None)
    if score is not None:
        (out / f"{k:02d}.mid").write_bytes(score_to_midi(score))
    p = keeper.provenance
    record: dict[str, Any] = {
        "query": query, "request": {"n": request.n, "duration_s": request.duration_s,
                                    "attributes": request.attributes, "like_track_id": request.like_track_id},
        "seed": seed, "candidate_index": p.candidate_index, "rank": o.rank, "prompt": p.prompt,
        "generator_id": p.generator_id, "weights_id": p.weights_id, "candidate_seed": p.seed,
        "encoder_id": pipeline.encoder.id, "scores": p.scores, "gates": p.gates,
        "neighbour_track_ids": p.neighbour_track_ids, "metadata": meta, "score": score,
        "prior_samples": {"shape": list(o.prior_samples.shape),
                          "values": [[round(float(x), 6) for x in row] for row in o.prior_samples]},
    }
    (out / f"{k:02d}.json").write_text(json.dumps(record, indent=1))


def _summary(out: Path, outcomes: list[Outcome], query: str, request: JobRequest, seed: int,
             pipeline: BackfillPipeline) -> None:
    rows = [{"candidate_index": o.candidate_index, "rank": o.rank, "kept": o.kept, "rejected": o.rejected,
             "scores": o.scores, "gates": o.gates} for o in outcomes]
    (out / "generation.json").write_text(json.dumps(
        {"query": query, "seed": seed, "n": request.n, "duration_s": request.duration_s,
         "attributes": request.attributes, "encoder_id": pipeline.encoder.id,
         "generator_id": pipeline.generator.id, "weights_id": pipeline.generator.weights_id,
         "candidates": rows}, indent=1))


def _table(outcomes: list[Outcome], title: str) -> None:
    table = Table(title=title, box=box.SIMPLE)
    for col in ("file", "cand", "ensemble", "meter", "mode", "bpm", "score", "melody run", "nearest cos / bar",
                "verdict"):
        table.add_column(col, justify="left" if col in ("file", "ensemble", "verdict") else "right")
    k = 0
    for o in outcomes:
        c = o.candidate.conditioning
        header = c.get("header") or {}
        emb = o.gates.get("embedding", {})
        near = f"{emb['max_similarity']:.3f} / {emb['threshold']:.3f}" if "threshold" in emb else "-"
        k += o.kept
        table.add_row(f"{k:02d}" if o.kept else "", str(o.candidate_index), str(c.get("ensemble", "-")),
                      str(header.get("meter", "-")), str(header.get("mode", "-")),
                      f"{c['bpm']:.0f}" if "bpm" in c else "-", f"{o.scores['total']:.3f}",
                      str(o.gates.get("melody", {}).get("copied_run", "-")), near,
                      "kept" if o.kept else f"rejected: {o.rejected}")
    Console(width=160).print(table)


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the CLI.

    One torch/OpenMP thread unless told otherwise: the pipeline's tensors are small, and a
    two-thread team on a busy two-core machine spins for its partner (a 4-candidate job measured
    8 s wall with one thread, 120 s with two; benchmarks/RESULTS.md).
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app.command("generate")(generate_command)
