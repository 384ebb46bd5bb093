"""The ``tunescope`` command line: a Typer app assembled from one module per area.

Each module in ``api.commands`` defines ``register(app)``; keeping them separate lets the
catalog, encoder, search and prior commands grow without one giant file.
"""

from __future__ import annotations

import importlib
import logging
import os

import typer
from sqlalchemy.exc import SQLAlchemyError

app = typer.Typer(
    name="tunescope",
    help="Music retrieval and recommendation: ingest a catalog, embed it, search it, serve it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Order is the order of --help. A module that is missing (not built yet) is skipped.
_COMMAND_MODULES = ("catalog", "demo", "encoder", "search", "prior", "generator", "generate", "train_all",
                    "backfill", "eval_backfill", "conversation")


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"api.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"api.commands.{name}":
                continue
            raise
        module.register(app)


def main() -> None:
    """Console-script entry point."""
    # Never let a library reach a model hub at run time: every model is local.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=os.environ.get("TUNESCOPE_LOG_LEVEL", "WARNING"))
    _register_all()
    try:
        app()
    except (OSError, SQLAlchemyError) as e:
        # The environment, not a bug: one line saying what is wrong and what to do, no traceback.
        typer.echo(f"error: {environment_problem(e)}", err=True)
        raise SystemExit(2) from None


def environment_problem(e: BaseException) -> str:
    """One line for a problem with the machine or the configuration (paths, database URL)."""
    from sqlalchemy.exc import OperationalError

    if isinstance(e, OperationalError):
        first = str(e.orig or e).strip().splitlines()[0][:300]
        return (f"cannot open the catalog database ({first}); check TUNESCOPE_DATABASE_URL "
                "(and that the server is running) or unset it to use SQLite in TUNESCOPE_HOME")
    if isinstance(e, SQLAlchemyError):
        return f"catalog database error: {str(e).splitlines()[0][:300]}"
    where = getattr(e, "filename", None)
    what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    from api.settings import get_settings

    home = os.path.abspath(get_settings().home)  # env or tunescope.toml, as the command read it
    in_home = where is not None and os.path.abspath(str(where)).startswith(home)
    hint = ("; set TUNESCOPE_HOME to a folder this user can create and write" if in_home
            or isinstance(e, PermissionError) or getattr(e, "errno", None) == 30 else "")
    return f"{what}: {where}{hint}" if where else f"{what}{hint}"


if __name__ == "__main__":
    main()
