"""``tunescope ingest`` and ``tunescope catalog stats`` through Typer, plus the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.commands import catalog
from tests.conftest import cli_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path,
            settings_env: Callable[[dict[str, str]], None]) -> dict[str, str]:
    env = {"TUNESCOPE_HOME": str(tmp_path / "home"), "TUNESCOPE_DATABASE_URL": db_url,
           "TUNESCOPE_MIN_DURATION_S": "1", "TUNESCOPE_MAX_DURATION_S": "60"}
    settings_env(env)
    return env


@pytest.fixture
def app() -> typer.Typer:
    return cli_app(catalog.register)


def test_ingest_and_stats(app: typer.Typer, cli_env: dict[str, str], tiny_audio_dir: Path) -> None:
    runner = CliRunner()
    bad = tiny_audio_dir / "audio" / "broken.wav"
    bad.write_text("not audio")
    result = runner.invoke(app, ["ingest", str(tiny_audio_dir), "--metadata",
                                 str(tiny_audio_dir / "metadata.jsonl"), "--batch-size", "2",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "ingested" in result.output and "broken.wav" in result.output
    assert "not an audio file: it is a text file" in result.output
    assert (Path(cli_env["TUNESCOPE_HOME"]) / "audio").is_dir()

    result = runner.invoke(app, ["catalog", "stats", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["tracks"] == 5 and stats["quarantined"] == 1
    assert stats["by"]["collection"] == {"Test Tones": 4, "(none)": 1}
    assert stats["by"]["origin"] == {"catalog": 5}
    assert stats["by"]["split"] == {"train": 3, "test": 1, "(none)": 1}
    assert stats["total_hours"] == pytest.approx(13.5 / 3600, abs=1e-4)

    result = runner.invoke(app, ["catalog", "stats"])
    assert result.exit_code == 0 and "tune type" in result.output


def test_exit_code_only_fails_when_nothing_ingested(app: typer.Typer, cli_env: dict[str, str],
                                                    tmp_path: Path, tone_writer) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    result = runner.invoke(app, ["ingest", str(bad), "--no-progress"])
    assert result.exit_code == 1 and "empty file" in result.output
    good = tone_writer(tmp_path / "good.flac", (440.0,), 2.0)
    assert runner.invoke(app, ["ingest", str(bad), str(good), "--no-progress"]).exit_code == 0
    # Only duplicates: nothing failed, so success.
    assert runner.invoke(app, ["ingest", str(good), "--no-progress"]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_console_entry_point(tmp_path: Path, tiny_audio_dir: Path) -> None:
    # Wiring only (settings from the environment, command modules loaded by api.cli); SQLite
    # alone, because each start imports every command module (seconds); both databases are
    # covered through CliRunner above.
    env = {**os.environ, "PYTHONPATH": str(REPO), "TUNESCOPE_HOME": str(tmp_path / "home")}
    env.pop("TUNESCOPE_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "api.cli", "ingest", str(tiny_audio_dir),
                          "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "api.cli", "catalog", "stats", "--json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tracks"] == 5
    assert (tmp_path / "home" / "tunescope.db").is_file()
