"""MusicGen, offline: a tiny random checkpoint saved here and loaded through the registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from generation.errors import GenerationError, GeneratorWeightsNotFound  # noqa: E402
from generation.generators import GenerationRequest, Generator, load_generator  # noqa: E402
from tests.generation.generators.tiny import save_musicgen  # noqa: E402

REQ = dict(text="a slow waltz", attributes={"meter": "3/4", "ensemble": "accordion"},
           duration_s=0.2, n_candidates=3, seed=7)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_musicgen(tmp_path_factory.mktemp("musicgen-tiny"))


@pytest.fixture(scope="module")
def gen(ckpt: Path) -> Generator:
    return load_generator("musicgen", ckpt, device="cpu")


def test_candidates_shape_rate_seeds_and_record(gen: Generator, rng: np.random.Generator) -> None:
    assert isinstance(gen, Generator) and gen.id == "musicgen"
    assert gen.sample_rate == 8000 and gen.weights_id.startswith("musicgen-tiny")
    targets = rng.standard_normal((5, 16))
    cands = gen.generate(GenerationRequest(**REQ, target_embeddings=targets))
    assert [c.seed for c in cands] == [7, 8, 9]
    for c in cands:
        assert c.audio.dtype == np.float32 and c.audio.shape == (1600,)  # exactly 0.2 s
        assert c.sample_rate == 8000 and c.score is None and np.abs(c.audio).max() > 0
        assert (c.generator_id, c.weights_id) == ("musicgen", gen.weights_id)
    rec = cands[0].conditioning
    assert rec["prompt"] == "a slow waltz, in 3/4, for accordion"
    assert rec["attributes"] == {"meter": "3/4", "ensemble": "accordion"}
    assert rec["target_embeddings"]["count"] == 5 and "re-ranking only" in rec["target_embeddings"]["used_for"]
    assert rec["guidance_scale"] == 3.0 and rec["max_new_tokens"] == 100 + 2


def test_seeds_reproduce_and_differ(gen: Generator) -> None:
    a = gen.generate(GenerationRequest(**REQ))
    b = gen.generate(GenerationRequest(**REQ))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.audio, y.audio)
    assert not np.allclose(a[0].audio, a[1].audio)
    alone = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1, "seed": 8}))[0]
    np.testing.assert_array_equal(alone.audio, a[1].audio)  # one stored seed regenerates it


def test_the_prompt_conditions_the_audio(gen: Generator) -> None:
    a = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1}))[0]
    b = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1, "text": "a fast jig"}))[0]
    assert not np.allclose(a.audio, b.audio)


def test_too_long_names_the_limit(gen: Generator) -> None:
    with pytest.raises(GenerationError, match="at most 1.0 s"):
        gen.generate(GenerationRequest(**{**REQ, "duration_s": 5.0}))


def test_weights_id_follows_the_weights(tmp_path: Path, gen: Generator) -> None:
    other = load_generator("musicgen", save_musicgen(tmp_path / "musicgen-tiny", seed=1), device="cpu")
    assert other.weights_id != gen.weights_id


def test_incomplete_checkpoint(tmp_path: Path, ckpt: Path) -> None:
    d = tmp_path / "partial"
    shutil.copytree(ckpt, d)
    (d / "tokenizer.json").unlink()
    with pytest.raises(GeneratorWeightsNotFound, match="tokenizer.json or spiece.model"):
        load_generator("musicgen", d, device="cpu")
    shutil.copy(ckpt / "tokenizer.json", d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(GeneratorWeightsNotFound, match="cannot load"):
        load_generator("musicgen", d, device="cpu")
