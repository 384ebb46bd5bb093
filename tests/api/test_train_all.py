"""``tunescope train-all`` end to end at toy scale: encoder, then catalog vectors, then prior.

What is checked is the chain a user relies on after retraining: the new encoder's weights
exist, every catalog track has a vector from that encoder (not only the old one), and the prior
was trained for that encoder id on those vectors. Sizes are tiny (10 rendered training pieces,
one epoch, a few prior steps; the generator step is off here, its training has its own tests);
quality is eval-encoder's and eval-prior's business.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from api.commands import catalog as catalog_commands
from api.commands import encoder as encoder_commands
from api.commands import prior as prior_commands
from api.commands import train_all as train_all_commands
from tests.api.test_prior_cli import _write_catalog
from tests.conftest import cli_app


@pytest.mark.timeout(900)
def test_train_all_chains_encoder_embed_and_prior(tmp_path: Path,
                                                  settings_env: Callable[[dict[str, str]], None]) -> None:
    home = tmp_path / "home"
    db = tmp_path / "catalog.db"
    catalog = _write_catalog(home / "demo-catalog", 12,
                             lambda i: "train" if i < 6 else ("validation" if i < 9 else "test"))
    base = {"TUNESCOPE_HOME": str(home), "TUNESCOPE_DATABASE_URL": f"sqlite:///{db}"}
    settings_env(base)
    cli = cli_app(catalog_commands.register, encoder_commands.register, prior_commands.register,
                  train_all_commands.register)
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", str(catalog), "--metadata", str(catalog / "metadata.jsonl"), "--no-progress"])
    assert r.exit_code == 0, r.output

    enc = tmp_path / "enc" / "clap-mini-toy.safetensors"
    prior = tmp_path / "prior" / "prior-toy.safetensors"
    settings_env({**base, "TUNESCOPE_ENCODER_PATH": str(enc)})
    r = runner.invoke(cli, ["train-all", "--size", "10", "--val-size", "10", "--epochs", "1", "--extra-captions", "2",
                            "--rhythm", "3", "--prompt-weight", "0.5", "--lr", "1e-3",
                            "--prior-steps", "3", "--prior-batch-size", "8", "--encoder-out", str(enc),
                            "--prior-out", str(prior), "--no-generator"])
    assert r.exit_code == 0, r.output
    card = json.loads(enc.with_suffix(".json").read_text())
    # the encoder options reach train-encoder (the committed recipe's options must be reproducible)
    assert card["train_config"]["prompt_weight"] == 0.5 and card["train_config"]["lr"] == 1e-3
    assert card["config"]["rhythm"] == 3 and card["data"]["v2"] == {"variety": "train", "production": True}
    assert card["data"]["train_renders"] == 10 and card["data"]["extra_captions"] == 2

    from retrieval.encoders.default import DefaultEncoder

    new_id = DefaultEncoder(enc).id
    with create_engine(f"sqlite:///{db}").connect() as c:
        per_encoder = dict(c.execute(text("SELECT encoder_id, count(*) FROM embeddings GROUP BY encoder_id")).all())
        tracks = c.execute(text("SELECT count(*) FROM tracks")).scalar_one()
    assert tracks >= 4  # identical tones are one track (content-addressed): 4 distinct pitches
    assert len(per_encoder) == 2 and set(per_encoder.values()) == {tracks}  # old vectors stay, new ones complete
    assert new_id in per_encoder
    prior_card = json.loads(prior.with_suffix(".json").read_text())
    assert prior_card["encoder_id"] == new_id
