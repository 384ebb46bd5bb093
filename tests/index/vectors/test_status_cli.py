"""``tunescope index status`` tells a damaged index apart from one in sync."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from api.commands import search as search_commands
from index.vectors import VectorIndex
from tests.conftest import cli_app
from tests.index.vectors.helpers import DIM, add_tracks, clustered


@pytest.fixture
def index_dir(factory: sessionmaker[Session], db_url: str, tmp_path: Path,
              settings_env: Callable[[dict[str, str]], None],
              monkeypatch: pytest.MonkeyPatch) -> Path:
    """A catalog of 30 tracks whose index is saved where the CLI's settings look for it."""
    settings_env({"TUNESCOPE_HOME": str(tmp_path / "home"), "TUNESCOPE_DATABASE_URL": db_url})
    monkeypatch.setattr(search_commands, "build_encoder",
                        lambda settings: SimpleNamespace(id="e", dim=DIM))
    add_tracks(factory, clustered(30), 1)
    d = tmp_path / "home" / "indexes"
    VectorIndex.open(d, "e", DIM, factory)
    return d


@pytest.fixture
def app() -> typer.Typer:
    return cli_app(search_commands.register)


def test_status_in_sync(app: typer.Typer, index_dir: Path) -> None:
    result = CliRunner().invoke(app, ["index", "status"])
    assert result.exit_code == 0, result.output
    assert "checksum verified" in result.output
    assert result.output.rstrip().endswith("in sync")


def test_status_reports_a_damaged_index(app: typer.Typer, index_dir: Path) -> None:
    (faiss_file,) = index_dir.glob("*.faiss")
    data = bytearray(faiss_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    faiss_file.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["index", "status"])
    assert result.exit_code == 0, result.output
    assert "damaged (checksum mismatch)" in result.output
    assert "rebuild needed" in result.output
    assert "in sync" not in result.output


def test_status_reports_an_unreadable_manifest(app: typer.Typer, index_dir: Path) -> None:
    (index_dir / "e.json").write_text("{not json")
    result = CliRunner().invoke(app, ["index", "status"])
    assert result.exit_code == 0, result.output
    assert "manifest unreadable" in result.output and "rebuild needed" in result.output
