"""Stable Audio Open, offline: a tiny random pipeline saved here and loaded through the registry."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

from generation.errors import GenerationError, GeneratorUnavailable, GeneratorWeightsNotFound  # noqa: E402
from generation.generators import GenerationRequest, Generator, load_generator  # noqa: E402
from tests.generation.generators.tiny import save_stable_audio  # noqa: E402

REQ = dict(text="a march", attributes={"ensemble": "brass band"}, duration_s=0.25,
           n_candidates=3, seed=11)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_stable_audio(tmp_path_factory.mktemp("stable-audio-tiny"))


@pytest.fixture(scope="module")
def gen(ckpt: Path) -> Generator:
    return load_generator("stable-audio", ckpt, device="cpu", num_inference_steps=2, batch_size=2)


def test_candidates_are_mono_at_the_vae_rate(gen: Generator, rng: np.random.Generator) -> None:
    assert isinstance(gen, Generator) and gen.id == "stable-audio" and gen.sample_rate == 800
    assert gen.max_duration_s() == pytest.approx(0.32)
    cands = gen.generate(GenerationRequest(**REQ, target_embeddings=rng.standard_normal((2, 8))))
    assert [c.seed for c in cands] == [11, 12, 13]
    stereo = gen.pipe(["a march, for brass band"], audio_end_in_s=0.25, num_inference_steps=2,
                      generator=__import__("torch").Generator().manual_seed(11),
                      negative_prompt=["low quality"], output_type="pt").audios[0]
    assert tuple(stereo.shape) == (2, 200)  # the model is stereo; candidates are its mean
    np.testing.assert_allclose(cands[0].audio, stereo.mean(0).numpy(), atol=1e-5)
    for c in cands:
        assert c.audio.dtype == np.float32 and c.audio.shape == (200,) and c.sample_rate == 800
    rec = cands[0].conditioning
    assert rec["prompt"] == "a march, for brass band" and rec["target_embeddings"]["count"] == 2
    assert rec["scheduler"] == "EDMDPMSolverMultistepScheduler"


def test_seeds_reproduce_and_differ(gen: Generator) -> None:
    a = gen.generate(GenerationRequest(**REQ))
    b = gen.generate(GenerationRequest(**REQ))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.audio, y.audio)
    assert not np.allclose(a[0].audio, a[1].audio, atol=1e-3)
    alone = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1, "seed": 13}))[0]
    np.testing.assert_allclose(alone.audio, a[2].audio, atol=1e-5)


def test_too_long_names_the_limit(gen: Generator) -> None:
    with pytest.raises(GenerationError, match="at most 0.32 s"):
        gen.generate(GenerationRequest(**{**REQ, "duration_s": 1.0}))


@pytest.mark.skipif(importlib.util.find_spec("torchsde") is not None, reason="torchsde is installed")
def test_the_released_scheduler_without_torchsde_names_the_extra(tmp_path: Path) -> None:
    d = save_stable_audio(tmp_path / "sa", scheduler="CosineDPMSolverMultistepScheduler")
    with pytest.raises(GeneratorUnavailable, match=r"tunescope\[gen-hf\]") as e:
        load_generator("stable-audio", d, device="cpu")
    assert "torchsde" in str(e.value)


def test_incomplete_pipeline(tmp_path: Path, ckpt: Path) -> None:
    d = tmp_path / "partial"
    shutil.copytree(ckpt, d)
    for f in (d / "transformer").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(GeneratorWeightsNotFound, match=r"transformer/\*.safetensors"):
        load_generator("stable-audio", d, device="cpu")


def test_the_released_scheduler_keeps_one_seed_per_candidate(tmp_path: Path) -> None:
    """The cosine SDE solver draws its noise from one Brownian tree per generator's seed."""
    pytest.importorskip("torchsde")
    d = save_stable_audio(tmp_path / "sa", scheduler="CosineDPMSolverMultistepScheduler")
    gen = load_generator("stable-audio", d, device="cpu", num_inference_steps=3, batch_size=3)
    assert type(gen.pipe.scheduler).__name__ == "CosineDPMSolverMultistepScheduler"
    a = gen.generate(GenerationRequest(**REQ))
    np.testing.assert_array_equal(a[1].audio, gen.generate(GenerationRequest(**REQ))[1].audio)
    alone = gen.generate(GenerationRequest(**{**REQ, "n_candidates": 1, "seed": 12}))[0]
    np.testing.assert_allclose(alone.audio, a[1].audio, atol=1e-5)
    assert not np.allclose(a[0].audio, a[1].audio, atol=1e-3)


def test_a_tokenizer_that_knows_no_english_is_refused(tmp_path: Path, ckpt: Path) -> None:
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    d = tmp_path / "unk"
    shutil.copytree(ckpt, d)
    shutil.rmtree(d / "tokenizer")
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(f"zz{i}", -1.0) for i in range(50)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2))  # T5's model type, a vocabulary of nonsense
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    transformers.T5Tokenizer(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>",
                             pad_token="<pad>", extra_ids=0).save_pretrained(d / "tokenizer")
    with pytest.raises(GeneratorWeightsNotFound, match="unknown tokens only"):
        load_generator("stable-audio", d, device="cpu")
