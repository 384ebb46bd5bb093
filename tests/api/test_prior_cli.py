"""``tunescope train-prior`` and ``tunescope eval-prior`` end to end on a tiny rendered catalog.

The real default encoder (MiniLM + the committed audio tower) embeds twelve two-second tones;
the prior and the regression baseline train for a few steps. What is checked is the plumbing a
user meets: the card's reproduction command, the evaluation's report on a catalog whose
metadata covers few of the evaluation's query sets, and readable errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.commands import prior as prior_commands
from tests.conftest import cli_app, write_tone

TUNES = ("jig", "reel", "air")


def _write_catalog(root: Path, n: int, split: Callable[[int], str], base_hz: float = 220.0) -> Path:
    rows = []
    for i in range(n):
        name = f"audio/t{i:02d}.flac"
        write_tone(root / name, (base_hz * (1 + i % 4),), 2.0, 16000)
        tune = TUNES[i % 3]
        ens = "solo fiddle" if i % 2 else "solo flute"
        rows.append({
            "path": name, "piece_id": f"tiny/{i}", "split": split(i),
            "tune_type": tune, "ensemble": ens, "instruments": [ens.split()[1]],
            "instrument_family": "strings" if i % 2 else "woodwind", "tradition": "Irish",
            "corpus_family": "irish", "collection": "Tiny", "mode": "major",
            "mode_family": "major", "meter": "6/8", "meter_class": "compound",
            "tempo_bpm": 120.0, "tempo_bucket": "fast", "duration_s": 2.0,
            "captions": [f"A {tune} on the {ens.split()[1]}", f"{ens} playing a {tune}"],
        })
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> Path:
    """Twelve tones: 6 train, 3 validation, 3 test; jigs, reels and airs on fiddle or flute."""
    return _write_catalog(tmp_path / "catalog", 12,
                          lambda i: "train" if i < 6 else ("validation" if i < 9 else "test"))


@pytest.fixture
def env(tmp_path: Path, settings_env: Callable[[dict[str, str]], None]) -> Path:
    home = tmp_path / "home"
    settings_env({"TUNESCOPE_HOME": str(home),
                  "TUNESCOPE_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"})
    return home


@pytest.fixture
def cli() -> typer.Typer:
    return cli_app(prior_commands.register)


def test_train_and_evaluate_a_prior(cli: typer.Typer, env: Path, tiny_catalog: Path,
                                    tmp_path: Path) -> None:
    runner = CliRunner()
    weights = tmp_path / "prior-tiny.safetensors"
    r = runner.invoke(cli, ["train-prior", "--catalog", str(tiny_catalog), "--steps", "30",
                            "--batch-size", "8", "--width", "16", "--depth", "1",
                            "--extra-captions", "3", "--out", str(weights)])
    assert r.exit_code == 0, r.output
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["config"]["mean_head"] is True and card["data"]["extra_captions"] == 3
    assert "--extra-captions 3" in card["command"] and "--steps 30" in card["command"]
    assert card["data"]["train_pairs"] == 6 * 5  # 2 shipped + 3 drawn captions per track
    assert not (tmp_path / "none.db").exists()  # no catalog database: the files were embedded

    report = tmp_path / "report.json"
    r = runner.invoke(cli, ["eval-prior", "--catalog", str(tiny_catalog), "--prior", str(weights),
                            "--split", "test", "--regression-steps", "10", "--seeds", "4",
                            "--repeats", "2", "--out", str(report)])
    assert r.exit_code == 0, r.output
    out = json.loads(report.read_text())
    assert out["tracks"] == 3 and set(out["results"]) == {"text", "regression", "generative"}
    gen = out["results"]["generative"]
    # the generative figures are the mean of two sampling seeds, and say so
    assert out["repeats"] == 2 and out["sample_seeds"] == [0, 1000] and gen["runs"] == 2
    assert "mean of 2 sampling seeds" in r.output
    assert 0.0 <= gen["captions"]["nDCG@10"] <= 1.0 and 0.0 <= gen["attributes"]["nDCG@10"] <= 1.0
    # only the broad queries the tiny catalog's metadata can answer are evaluated
    assert "Irish music" in gen["broad_per_query"] and "early music" not in gen["broad_per_query"]
    assert "paraphrases nDCG@10" in r.output

    # An evaluation render (test pieces only, "played" differently): the regression baseline
    # learns from the prior's catalogs (its card lists them), and a test-only catalog given as
    # the regression's data is refused with the way out.
    assert card["data"]["catalogs"] == [str(tiny_catalog.resolve())]
    assert f"--catalog {tiny_catalog}" in card["command"]
    render = _write_catalog(tmp_path / "eval-render", 5, lambda i: "test", base_hz=233.0)
    r = runner.invoke(cli, ["eval-prior", "--catalog", str(render), "--train-catalog", str(render),
                            "--prior", str(weights), "--regression-steps", "10", "--repeats", "1"])
    assert r.exit_code == 2 and "--train-catalog" in r.output
    r = runner.invoke(cli, ["eval-prior", "--catalog", str(render), "--prior", str(weights),
                            "--regression-steps", "10", "--seeds", "4", "--repeats", "1",
                            "--fusion", "likelihood", "--out", str(report)])
    assert r.exit_code == 0, r.output
    out = json.loads(report.read_text())
    assert out["tracks"] == 5 and out["catalog"] == str(render)
    assert out["config"]["fusion"] == "likelihood"

    # A sweep: every combination against the same baselines, and the selection rule's pick.
    r = runner.invoke(cli, ["eval-prior", "--catalog", str(tiny_catalog), "--prior", str(weights),
                            "--split", "test", "--regression-steps", "10", "--seeds", "4", "--repeats", "2",
                            "--sweep", "combine=z,rank", "--sweep", "mmr_lambda=0.8,none", "--out", str(report)])
    assert r.exit_code == 0, r.output
    swept = json.loads(report.read_text())
    assert sorted(row["setting"] for row in swept["rows"]) == [
        "combine=rank, mmr_lambda=0.8", "combine=rank, mmr_lambda=None",
        "combine=z, mmr_lambda=0.8", "combine=z, mmr_lambda=None"]
    assert swept["repeats"] == 2 and "selected:" in r.output
    passing = [row for row in swept["rows"] if row["passes"]]
    assert swept["selected"] == (passing[0]["setting"] if passing else None)
    for bad in ("mmr_lambda", "combine=max", "colour=red", "kde_weight=a"):
        r = runner.invoke(cli, ["eval-prior", "--catalog", str(tiny_catalog), "--prior", str(weights),
                                "--sweep", bad])
        assert r.exit_code == 2 and "error" in r.output, (bad, r.output)
    assert out["train_catalogs"] == [str(tiny_catalog.resolve())]
    # each catalog keeps its own embedding cache
    assert len(list((env / "prior-data").rglob("*.npz"))) == 2


def test_eval_prior_rejects_an_unknown_split(cli: typer.Typer, env: Path,
                                             tiny_catalog: Path) -> None:
    r = CliRunner().invoke(cli, ["eval-prior", "--catalog", str(tiny_catalog), "--split", "dev"])
    assert r.exit_code == 2 and "dev" in r.output and "validation" in r.output


def test_eval_prior_rejects_an_unknown_fusion_before_any_work(cli: typer.Typer, env: Path,
                                                             tiny_catalog: Path) -> None:
    r = CliRunner().invoke(cli, ["eval-prior", "--catalog", str(tiny_catalog), "--fusion", "best"])
    assert r.exit_code == 2 and "'best'" in r.output and "likelihood" in r.output
    assert not (env / "prior-data").exists()  # nothing was embedded


def test_train_prior_without_a_catalog_says_how_to_make_one(cli: typer.Typer, env: Path,
                                                            tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["train-prior", "--catalog", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "demo-catalog" in r.output
