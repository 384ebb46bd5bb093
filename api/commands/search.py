"""``tunescope serve``, ``tunescope index build|status`` and ``tunescope search``.

The serving side of the CLI: the same objects the HTTP API uses (``create_app``'s search
service), so ``tunescope search "..." --json`` prints exactly what ``GET /v1/search`` returns.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from api.settings import get_settings
from api.wiring import build_encoder

index_app = typer.Typer(help="The vector index of the configured encoder.", no_args_is_help=True)


def serve_command(
    host: str | None = typer.Option(None, help="Bind address (default: settings.host)."),
    port: int | None = typer.Option(None, help="Port (default: settings.port)."),
) -> None:
    """Serve the API and the web page with uvicorn."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    import torch

    # One intra-op thread per request, as for FAISS: the server's parallelism is its concurrent
    # requests. Measured: a generative query (MiniLM + 8 prior seeds + search) took 56 ms with
    # the default 2 threads (the sampler's 1-thread section makes MiniLM re-spin its team on
    # every call) and 26 ms with 1 thread throughout.
    torch.set_num_threads(settings.server_torch_threads)
    # The same for numpy's BLAS: the generative ranking's small matrix products (a ~100-track
    # candidate pool) spent twice their wall time in CPU with OpenBLAS's default team.
    from threadpoolctl import threadpool_limits

    threadpool_limits(settings.server_torch_threads, user_api="blas")
    from api.server import JsonErrorHttpProtocol

    app = create_app(settings, warm=True)
    host, port = host or settings.host, port or settings.port
    Console(stderr=True).print(f"tunescope serving at http://{host}:{port}/ (warming up; "
                               "/v1/health says ok when ready)")
    uvicorn.run(app, host=host, port=port, log_level="warning", http=JsonErrorHttpProtocol)


def index_build(
    factory: str | None = typer.Option(None, help="FAISS factory string; default by size."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Ignore the saved index."),
) -> None:
    """Bring the index in line with the catalog (or rebuild it) and save it."""
    from index.db import open_catalog
    from index.vectors import IndexConfig, VectorIndex

    settings = get_settings()
    enc = build_encoder(settings)
    sf = open_catalog(settings.resolved_database_url)
    config = IndexConfig(factory=factory, device=settings.device)
    if rebuild:
        with sf() as session:
            vi = VectorIndex.rebuild(session, enc.id, enc.dim, config=config)
        vi.save(settings.index_dir)
    else:
        vi = VectorIndex.open(settings.index_dir, enc.id, enc.dim, sf, config=config)
    typer.echo(f"index {enc.id}: {vi.count} vectors, {vi.factory}, at {settings.index_dir}")


def index_status() -> None:
    """Show the saved index manifest beside the database watermark, and whether it is usable.

    The saved index is loaded and checked as a server start would (checksum, vector sanity):
    "in sync" means a start would serve that file as it is, while a damaged one is reported as
    such, never as in sync, because a start would rebuild it from the database.
    """
    from index.db import open_catalog
    from index.errors import IndexFileError
    from index.vectors import VectorIndex, db_watermark
    from index.vectors.manifest import manifest_path, read_manifest

    settings = get_settings()
    enc = build_encoder(settings)
    manifest, problem, verified = None, None, False
    try:
        manifest = read_manifest(manifest_path(settings.index_dir, enc.id))
        loaded = VectorIndex.load_checked(settings.index_dir, enc.id) if manifest else None
        verified = loaded is not None and loaded.verified
    except IndexFileError as e:
        problem = e.reason
    with open_catalog(settings.resolved_database_url)() as session:
        wm = db_watermark(session, enc.id)
    table = Table("", "index (manifest)", "database")
    table.add_row("encoder", enc.id, enc.id)
    if manifest:
        table.add_row("factory", manifest.factory, "")
        table.add_row("count", str(manifest.count), str(wm.count))
        table.add_row("max embedding id", str(manifest.watermark.max_embedding_id),
                      str(wm.max_embedding_id))
        state = problem or ("checksum verified" if verified else "unverified (no checksum)")
        table.add_row("file", state, "")
    else:
        table.add_row("count", "unusable" if problem else "no index saved", str(wm.count))
    Console().print(table)
    if problem:
        typer.echo(f"{problem}: rebuild needed (`tunescope index build` rebuilds it from the "
                   "database; a server start does too)")
        return
    in_sync = manifest is not None and manifest.watermark == wm
    typer.echo("in sync" if in_sync else "out of sync: `tunescope index build` updates it")


def search_command(
    text: str = typer.Argument(..., help="What to find."),
    k: int = typer.Option(10, "--k", help="Results."),
    offset: int = typer.Option(0, "--offset"),
    collection: list[str] = typer.Option([], "--collection"),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON response."),
    generative: bool = typer.Option(False, "--generative", help="Search from diffusion-prior "
                                    "seeds (needs `tunescope train-prior`)."),
    seeds: int = typer.Option(8, "--seeds", help="Prior seeds (with --generative)."),
    negative: list[str] = typer.Option([], "--negative", help="Steer away from (--generative)."),
    like: list[int] = typer.Option([], "--like", help="Example track id to steer toward (--generative)."),
    unlike: list[int] = typer.Option([], "--unlike", help="Track id to steer away from (--generative)."),
) -> None:
    """Search the catalog by text from the command line."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    if (negative or like or unlike) and not generative:
        raise typer.BadParameter("--negative, --like and --unlike steer --generative search")
    settings = get_settings()
    client = TestClient(create_app(settings))
    params = {"q": text, "k": k, "offset": offset, "collection": collection}
    if generative:
        params.update(seeds=seeds, negative=negative, like=like, unlike=unlike)
    path = "/v1/search/generative" if generative else "/v1/search"
    r = client.get(path, params=params,
                   headers={"X-API-Key": settings.api_key} if settings.api_key else {})
    body = r.json()
    if r.status_code != 200:
        typer.echo(f"error: {body.get('detail', body)}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(body, indent=1))
        return
    table = Table("score", "id", "title", "artist", "collection", "key", "meter", "tempo")
    for item in body["results"]:
        t = item["track"]
        table.add_row(f"{item['score']:.3f}", str(t["id"]), t["title"], t["artist"] or "",
                      t["collection"] or "", f"{t['key'] or ''} {t['mode'] or ''}",
                      t["meter"] or "", f"{t['tempo_bpm'] or ''}")
    Console().print(table)
    if "spread" in body["query"]:
        typer.echo(f"seed spread {body['query']['spread']:.3f} (the query's uncertainty)")
    if body["weak_match"]:
        typer.echo(f"weak match: {body['weak_match_detail']['reason']}")
    b = body.get("backfill")
    if b and b["job_id"] is not None:
        typer.echo(f"generation {'queued' if b['created'] else 'already ' + b['status']}: "
                   f"job {b['job_id']} (`tunescope worker` works it)")
    elif b:
        typer.echo("generation not queued: the hourly limit on generated tracks is reached")


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``index`` and ``search`` to the CLI."""
    app.command("serve")(serve_command)
    app.command("search")(search_command)
    index_app.command("build")(index_build)
    index_app.command("status")(index_status)
    app.add_typer(index_app, name="index")
