"""The registry and its errors: unknown names, missing weights, missing extras, unbuilt backends.

None of these load a model: a wrong path must be reported before anything heavy is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from api.settings import Settings
from api.wiring import build_generator
from generation.errors import GenerationError, GeneratorUnavailable, GeneratorWeightsNotFound
from generation.generators import load_generator, registry
from generation.generators.layout import LAYOUTS


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(GenerationError, match="audioldm2, musicgen, stable-audio, symbolic"):
        load_generator("musicldm")


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_real_backends_need_a_path(name: str) -> None:
    with pytest.raises(GeneratorWeightsNotFound, match="TUNESCOPE_GENERATOR_PATH") as e:
        load_generator(name)
    assert LAYOUTS[name].checkpoints[0] in str(e.value)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_missing_directory_says_what_to_put_where(tmp_path: Path, name: str) -> None:
    where = tmp_path / "nope"
    with pytest.raises(GeneratorWeightsNotFound, match="the directory itself") as e:
        load_generator(name, where)
    msg = str(e.value)
    assert str(where) in msg and "huggingface-cli download" in msg and "docs/generators.md" in msg


def test_incomplete_directories_name_each_missing_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GeneratorWeightsNotFound) as e:
        load_generator("musicgen", tmp_path)
    msg = str(e.value)
    assert "*.safetensors or *.bin" in msg and "tokenizer.json or spiece.model" in msg
    assert "missing config.json" not in msg  # present, so not named

    (tmp_path / "model_index.json").write_text("{}")
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}")
    with pytest.raises(GeneratorWeightsNotFound) as e:
        load_generator("audioldm2", tmp_path)
    msg = str(e.value)
    assert "unet/*.safetensors" in msg and "language_model/config.json" in msg
    assert "unet/config.json;" not in msg and "cvssp/audioldm2-music" in msg


def test_a_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_backend.py").write_text("import torchsde_is_not_installed_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.GENERATORS, "fake", "fake_backend:Fake")
    monkeypatch.setitem(registry.EXTRAS, "fake", "gen-hf")
    with pytest.raises(GeneratorUnavailable) as e:
        load_generator("fake")
    msg = str(e.value)
    assert "pip install 'tunescope[gen-hf]'" in msg and "torchsde_is_not_installed_here" in msg
    sys.modules.pop("fake_backend", None)


def test_build_generator_reads_the_settings(tmp_path: Path) -> None:
    s = Settings(generator="stable-audio", generator_path=tmp_path / "sa", device="cpu")
    with pytest.raises(GeneratorWeightsNotFound, match=str(tmp_path / "sa")):
        build_generator(s)
    with pytest.raises(GeneratorWeightsNotFound, match="musicgen weights"):
        build_generator(s, name="musicgen")
    assert Settings().generator == "symbolic" and Settings().generator_path is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNESCOPE_GENERATOR", "musicgen")
    monkeypatch.setenv("TUNESCOPE_GENERATOR_PATH", str(tmp_path))
    s = Settings()
    assert (s.generator, s.generator_path) == ("musicgen", tmp_path)
