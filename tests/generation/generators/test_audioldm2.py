"""AudioLDM2, offline: a tiny random pipeline saved here (its language model saved as the
released checkpoints name it, ``GPT2Model``) and loaded through the registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

from generation.errors import GeneratorWeightsNotFound  # noqa: E402
from generation.generators import GenerationRequest, Generator, load_generator  # noqa: E402
from tests.generation.generators.tiny import save_audioldm2  # noqa: E402

REQ = dict(text="a slow waltz", attributes={"ensemble": "accordion"}, duration_s=0.1,
           n_candidates=3, seed=3)


def _distinct(a: np.ndarray, b: np.ndarray) -> bool:
    """Different beyond float noise, relative to the (tiny) amplitude of a random model."""
    return float(np.abs(a - b).max()) > 1e-3 * float(np.abs(a).max())


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_audioldm2(tmp_path_factory.mktemp("audioldm2-tiny"))


@pytest.fixture(scope="module")
def gen(ckpt: Path) -> Generator:
    return load_generator("audioldm2", ckpt, device="cpu", num_inference_steps=2, batch_size=2)


def test_released_layout_loads_with_a_gpt2_lm_head(ckpt: Path, gen: Generator) -> None:
    index = json.loads((ckpt / "model_index.json").read_text())
    assert index["language_model"] == ["transformers", "GPT2Model"]  # as cvssp/audioldm2 ships
    assert type(gen.pipe.language_model).__name__ == "GPT2LMHeadModel"


def test_candidates_shape_rate_seeds_and_record(gen: Generator) -> None:
    assert isinstance(gen, Generator) and gen.id == "audioldm2" and gen.sample_rate == 16000
    cands = gen.generate(GenerationRequest(**REQ))  # 3 candidates in batches of 2
    assert [c.seed for c in cands] == [3, 4, 5]
    for c in cands:
        assert c.audio.dtype == np.float32 and c.audio.shape == (1600,) and c.sample_rate == 16000
        assert np.abs(c.audio).max() > 0 and c.score is None and c.weights_id == gen.weights_id
    rec = cands[0].conditioning
    assert rec["prompt"] == "a slow waltz, for accordion" and rec["target_embeddings"] is None
    assert (rec["num_inference_steps"], rec["scheduler"]) == (2, "DDIMScheduler")
    assert rec["negative_prompt"] == "low quality, average quality"


def test_seeds_reproduce_and_differ(gen: Generator) -> None:
    a = gen.generate(GenerationRequest(**REQ))
    b = gen.generate(GenerationRequest(**REQ))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.audio, y.audio)
    assert _distinct(a[0].audio, a[1].audio) and _distinct(a[1].audio, a[2].audio)
    alone = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1, "seed": 4}))[0]
    np.testing.assert_allclose(alone.audio, a[1].audio, rtol=0, atol=1e-4 * np.abs(a[1].audio).max())
    other = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1, "text": "a fast jig"}))[0]
    assert _distinct(other.audio, a[0].audio)


def test_incomplete_pipeline(tmp_path: Path, ckpt: Path) -> None:
    d = tmp_path / "partial"
    shutil.copytree(ckpt, d)
    shutil.rmtree(d / "language_model")
    with pytest.raises(GeneratorWeightsNotFound, match="language_model/config.json") as e:
        load_generator("audioldm2", d, device="cpu")
    assert "language_model/*.safetensors or language_model/*.bin" in str(e.value)


def test_an_untied_lm_head_left_on_meta_is_tied_to_the_embeddings() -> None:
    import torch
    import transformers

    from generation.generators.audioldm2 import _head_tied

    lm = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=16, n_head=2, n_layer=1, vocab_size=64))
    lm.lm_head.weight = torch.nn.Parameter(torch.empty(64, 16, device="meta"))
    out = _head_tied(lm)
    assert not out.lm_head.weight.is_meta and out.lm_head.weight is out.transformer.wte.weight
    out.to("cpu")  # what failed in CI before the tie
