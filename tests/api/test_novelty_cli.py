"""``tunescope build-novelty-index`` on a three-piece slice of the corpus."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api.commands import backfill
from generation.backfill.novelty import NgramIndex
from tests.conftest import cli_app


def test_build_novelty_index_writes_a_loadable_index(tmp_path: Path, settings_env) -> None:
    settings_env({"TUNESCOPE_HOME": str(tmp_path)})
    r = CliRunner().invoke(cli_app(backfill.register), ["build-novelty-index", "--limit", "3",
                                                        "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "12-grams from 3 pieces (0 unparsable)" in r.output
    index = NgramIndex.load(tmp_path / "novelty" / "melody-12grams.npy")
    assert index.n == 12 and len(index.hashes) > 50 and index.meta["pieces"] == 3
