"""``tunescope eval-conversation``: the conversational recommender against simulated users."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from api.settings import get_settings


def eval_conversation_command(
    targets: int = typer.Option(300, "--targets", min=1, help="Hidden targets from the test "
                                "split, stratified by collection (all of them if fewer)."),
    seeds: int = typer.Option(3, "--seeds", min=1, max=20, help="Simulated users per target."),
    turns: int = typer.Option(8, "--turns", min=2, max=20, help="Turns per conversation (the "
                              "5-turn figures are the first five of these)."),
    noise: float = typer.Option(0.1, "--noise", min=0.0, max=1.0, help="Share of random critiques."),
    prior: bool = typer.Option(True, "--prior/--no-prior", help="Search vague turns from the "
                               "prior's seeds (when a prior exists for the encoder)."),
    seed: int = typer.Option(0, "--seed", help="Target sampling seed."),
    out: Path | None = typer.Option(None, "--out", help="Write the full report as JSON here."),
) -> None:
    """Simulated conversations toward hidden targets: the engine and its baselines, one run."""
    from api.wiring import build_encoder, build_search_service, load_prior
    from index.db import open_catalog
    from retrieval.conversation.catalog import CatalogFacts
    from retrieval.errors import RetrievalError
    from retrieval.evaluation.conversation_report import evaluate, markdown

    settings = get_settings()
    factory = open_catalog(settings.resolved_database_url)
    service = build_search_service(settings, build_encoder(settings), factory)
    catalog = CatalogFacts.load(factory, service.encoder.id)
    p = None
    if prior:
        try:
            p = load_prior(service.encoder.id)
        except RetrievalError as e:
            typer.echo(f"note: no prior ({e}); vague turns use plain search", err=True)
    report = evaluate(service, catalog, n_targets=targets, seeds=seeds, turns=turns, noise=noise,
                      prior=p, seed=seed, progress=lambda m: typer.echo(m, err=True))
    if report["targets"] < targets:
        typer.echo(f"note: the test split holds {report['test_split_tracks']} tracks; all "
                   f"{report['targets']} are targets (fewer than the {targets} asked)", err=True)
    typer.echo(markdown(report))
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "systems"}, indent=1))
    if out:
        out.write_text(json.dumps(report, indent=1))


def register(app: typer.Typer) -> None:
    """Add ``eval-conversation`` to the CLI."""
    app.command("eval-conversation")(eval_conversation_command)
