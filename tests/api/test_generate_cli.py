"""``tunescope generate`` (no server, no catalog) and the default backfill factory behind ``tunescope worker``.

Real models (the committed clap-mini, prior and symbolic weights) and a real n-gram index of
three corpus pieces saved where the settings look for it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from api.commands import backfill as backfill_commands
from api.commands import generate as generate_commands
from api.settings import Settings
from generation.backfill.novelty import build_ngram_index
from generation.symbolic.corpus import list_sources
from index.db import open_catalog
from index.models import Track, TrackProvenance
from index.repo import backfill as q
from tests.conftest import cli_app

pytestmark = pytest.mark.timeout(300)


def _home_with_index(home: Path) -> Path:
    build_ngram_index(list_sources()[:3]).save(Settings(home=home).novelty_index_path)
    return home


def test_generate_writes_audio_midi_and_provenance_without_a_catalog(
        tmp_path: Path, settings_env: Callable[[dict[str, str]], None]) -> None:
    import pretty_midi

    home = _home_with_index(tmp_path / "home")
    settings_env({"TUNESCOPE_HOME": str(home)})
    out = tmp_path / "out"
    r = CliRunner().invoke(cli_app(generate_commands.register), [
        "generate", "a jig for fiddle", "--n", "2", "--duration", "4", "--rounds", "1", "--seed", "3",
        "--attr", "mode=minor", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 kept of 2 gated" in r.output and "wrote 2 x (.wav, .mid, .json)" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["01.json", "01.mid", "01.wav", "02.json", "02.mid",
                                                     "02.wav", "generation.json"]
    assert not (home / "tunescope.db").exists()  # no catalog is created to find nothing in
    for k in ("01", "02"):
        audio, sr = sf.read(io.BytesIO((out / f"{k}.wav").read_bytes()))
        assert abs(len(audio) / sr - 4.0) < 0.05
        record = json.loads((out / f"{k}.json").read_text())
        assert record["query"] == "a jig for fiddle" and record["seed"] == 3
        assert record["candidate_seed"] == 3 + record["candidate_index"]
        assert record["gates"]["embedding"] == {"skipped": "no catalog"}
        assert record["gates"]["melody"]["passed"] and record["gates"]["melody"]["index_ngrams"] > 50
        assert record["prior_samples"]["shape"] == [8, 512] and record["metadata"]["mode"] == "minor"
        midi = pretty_midi.PrettyMIDI(str(out / f"{k}.mid"))
        assert sum(len(i.notes) for i in midi.instruments if i.name != "drone") == len(record["score"]["pitch"])
    summary = json.loads((out / "generation.json").read_text())
    assert [c["kept"] for c in summary["candidates"]] == [True, True]


def test_generate_without_the_novelty_index_says_how_to_build_it(
        tmp_path: Path, settings_env: Callable[[dict[str, str]], None]) -> None:
    settings_env({"TUNESCOPE_HOME": str(tmp_path)})
    r = CliRunner().invoke(cli_app(generate_commands.register), ["generate", "a reel", "--out", str(tmp_path / "o")])
    said = " ".join(r.output.replace("│", " ").split())  # the error box wraps lines
    assert r.exit_code == 2 and "does not exist: build it once with `tunescope build-novelty-index`" in said
    assert "--no-melody-gate" in said


def test_the_default_factory_runs_a_job_through_tunescope_worker(
        tmp_path: Path, settings_env: Callable[[dict[str, str]], None]) -> None:
    home = _home_with_index(tmp_path / "home")
    settings_env({"TUNESCOPE_HOME": str(home), "TUNESCOPE_BACKFILL_GENERATE": "api.backfill_pipeline:from_settings"})
    factory = open_catalog(Settings(home=home).resolved_database_url)
    job, _ = q.enqueue(factory, "k", "a march for brass quartet", {"n": 1, "duration_s": 3.0}, recent_window_s=0)
    r = CliRunner().invoke(cli_app(backfill_commands.register), ["worker", "--exit-when-idle"])
    assert r.exit_code == 0, r.output
    assert f"job {job.id} attempt 1/3: done" in r.output and "1 tracks stored" in r.output
    p = q.job_progress(factory, job.id)
    assert p.progress["generated"] == 2 and p.progress["kept"] == 1  # a search of 3 rounds, 2 returned
    with factory() as s:
        t = s.get(Track, p.result_track_ids[0])
        prov = s.get(TrackProvenance, 1)
    assert t.origin == "generated" and t.extra["score"]["format"] == "tunescope-events/1"
    assert prov.generator_id == "symbolic" and prov.scores["search"] is not None
    assert "no acoustic bar" in prov.gates["embedding"]["skipped"]  # an empty catalog sets none
    factory.kw["bind"].dispose()
