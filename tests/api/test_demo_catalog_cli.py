"""``tunescope demo-catalog`` options for evaluation renders: one split, the held-out soundfont."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.commands import demo
from generation.symbolic.render import HELDOUT_SOUNDFONT, soundfont_paths
from tests.conftest import cli_app


@pytest.fixture
def cli() -> typer.Typer:
    return cli_app(demo.register)


def test_a_test_only_render_with_the_held_out_soundfont(cli: typer.Typer, tmp_path: Path) -> None:
    assert HELDOUT_SOUNDFONT in soundfont_paths(), "`make soundfonts` installs it"
    out = tmp_path / "eval"
    r = CliRunner().invoke(cli, ["demo-catalog", "--out", str(out), "--size", "2", "--seed", "3",
                                 "--split", "test", "--soundfont", "heldout", "--workers", "1",
                                 "--sample-rate", "16000"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert {row["split"] for row in rows} == {"test"}
    assert {row["soundfont"] for row in rows} == {HELDOUT_SOUNDFONT}


@pytest.mark.parametrize(("args", "message"), [(["--split", "dev"], "dev"),
                                               (["--soundfont", "piano"], "heldout")])
def test_bad_options_are_named(cli: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(cli, ["demo-catalog", "--out", str(tmp_path / "x"), "--size", "1", *args])
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "x" / "metadata.jsonl").exists()
