"""The ``tunescope`` command line: a Typer app assembled from one module per area.

Each module in ``api.commands`` defines ``register(app)``; keeping them separate lets the
catalog, encoder, search and prior commands grow without one giant file.
"""

from __future__ import annotations

import importlib
import logging
import os

import typer

app = typer.Typer(
    name="tunescope",
    help="Music retrieval and recommendation: ingest a catalog, embed it, search it, serve it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Order is the order of --help. A module that is missing (not built yet) is skipped.
_COMMAND_MODULES = ("catalog", "demo", "encoder", "search", "prior")


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
    app()


if __name__ == "__main__":
    main()
