"""CLAP backends, offline: tiny random ClapModels, tokenizers and feature extractors built here.

Nothing touches a hub (``HF_HUB_OFFLINE=1``). The tiny towers are widths 8-64, but the feature
extractor always makes a full 10 s log-mel per window (~0.1 s each), so clips are kept few.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from retrieval.encoders import Encoder, load_encoder  # noqa: E402
from retrieval.encoders.hf_clap import HFClapEncoder, window_starts  # noqa: E402
from retrieval.encoders.laion_clap import (  # noqa: E402
    LaionClapEncoder,
    hf_to_laion_state_dict,
    laion_to_hf_state_dict,
)
from retrieval.errors import RetrievalError, WeightsNotFoundError  # noqa: E402

SR = 48000
CAPTIONS = ["a slow piano piece in a minor key", "a fast jig on the fiddle",
            "a string quartet", "solo flute melody", "loud drums and bass"]


def _tokenizer(words: list[str] | None = None) -> transformers.PreTrainedTokenizerFast:
    """A RoBERTa-like byte-level BPE (ids <s>=0 <pad>=1 </s>=2 <unk>=3), or a WordLevel one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    if words is not None:  # a vocabulary that knows none of the probe words
        vocab = {t: i for i, t in enumerate(specials + words)}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(CAPTIONS * 3, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", mask_token="<mask>")


def _tiny_model(seed: int = 0) -> transformers.ClapModel:
    """A ~0.1 M-param ClapModel with every weight randomised (init leaves many at 0 or 1)."""
    cfg = transformers.ClapConfig(
        text_config=dict(vocab_size=300, hidden_size=64, num_hidden_layers=1,
                         num_attention_heads=1, intermediate_size=32,
                         max_position_embeddings=80, projection_dim=16, layer_norm_eps=1e-5),
        audio_config=dict(patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[1, 2],
                          hidden_size=16, projection_dim=16),
        projection_dim=16)
    model = transformers.ClapModel(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
        bn = model.audio_model.audio_encoder.batch_norm
        bn.running_mean.normal_(0.0, 1.0, generator=g)
        bn.running_var.uniform_(0.5, 2.0, generator=g)
    return model


def _save_hf(path: Path, model: transformers.ClapModel) -> Path:
    model.save_pretrained(path)
    _tokenizer().save_pretrained(path)
    transformers.ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc").save_pretrained(
        path)
    return path


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads; on a shared CPU, OpenMP spinning costs 5x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_hf(tmp_path_factory.mktemp("clap"), _tiny_model())


@pytest.fixture(scope="module")
def enc(hf_dir: Path) -> HFClapEncoder:
    return HFClapEncoder(hf_dir, device="cpu", batch_size=4)


def _wave(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = rng.uniform(100, 2000)
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32)


def test_shapes_norms_determinism(enc: HFClapEncoder, rng: np.random.Generator) -> None:
    assert isinstance(enc, Encoder)
    assert enc.id.startswith("hf-clap@") and len(enc.id) == len("hf-clap@") + 12
    assert (enc.dim, enc.sample_rate) == (16, SR)
    t = enc.embed_text(CAPTIONS)
    assert t.shape == (5, 16) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(t, enc.embed_text(CAPTIONS))
    waves = [_wave(rng, 3.0), _wave(rng, 12.0)]
    a = enc.embed_audio(waves)
    assert a.shape == (2, 16) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, enc.embed_audio(waves))
    # batch vs one at a time
    np.testing.assert_allclose(enc.embed_audio(waves[:1])[0], a[0], atol=1e-5)
    np.testing.assert_allclose(enc.embed_text(CAPTIONS[2:3])[0], t[2], atol=1e-5)
    assert enc.text_collapse_cosine < 0.98  # the randomised text tower is healthy
    assert enc.embed_audio([]).shape == (0, 16) and enc.embed_text([]).shape == (0, 16)
    with pytest.raises(RetrievalError, match="mono"):
        enc.embed_audio([np.zeros((2, SR), dtype=np.float32)])


def test_window_starts_cover_the_track() -> None:
    assert window_starts(100, 1000, 500) == [0]
    assert window_starts(35, 10, 5) == [0, 5, 10, 15, 20, 25]
    assert window_starts(37, 10, 5) == [0, 5, 10, 15, 20, 25, 27]  # tail window end-aligned


def test_long_audio_is_the_mean_of_its_windows(enc: HFClapEncoder,
                                               rng: np.random.Generator) -> None:
    x = np.concatenate([_wave(rng, 17.5), _wave(rng, 17.5)])  # 35 s: windows at 0,5,...,25 s
    got = enc.embed_audio([x])[0]
    raw = enc.embed_windows([x[s * SR:(s + 10) * SR] for s in range(0, 30, 5)])
    mean = raw.mean(axis=0)
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean), atol=1e-5)
    first = raw[0] / np.linalg.norm(raw[0])
    assert not np.allclose(got, first, atol=1e-3)  # not just the first 10 s


def test_id_names_the_weights(tmp_path: Path, enc: HFClapEncoder) -> None:
    other = HFClapEncoder(_save_hf(tmp_path / "b", _tiny_model(seed=1)), device="cpu")
    assert other.id != enc.id


def test_missing_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="clap-htsat-unfused") as e:
        HFClapEncoder(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        HFClapEncoder(tmp_path / "partial")


@pytest.mark.parametrize("words", [[], [f"zz{i}" for i in range(200)]],
                         ids=["tiny-vocab", "all-unk"])
def test_all_unk_tokenizer_raises(tmp_path: Path, hf_dir: Path, words: list[str]) -> None:
    d = tmp_path / "unk"
    d.mkdir()
    for f in hf_dir.iterdir():
        if not f.name.startswith("tokenizer"):
            (d / f.name).symlink_to(f)
    _tokenizer(words).save_pretrained(d)
    with pytest.raises(WeightsNotFoundError, match="tokenizer"):
        HFClapEncoder(d, device="cpu")


def test_collapsed_text_tower_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = _tiny_model()
    with torch.no_grad():  # every caption -> the same vector: what a collapsed tower does
        model.text_projection.linear2.weight.zero_()
        model.text_projection.linear2.bias.fill_(0.5)
    with caplog.at_level(logging.WARNING, logger="retrieval.encoders.hf_clap"):
        e = HFClapEncoder(_save_hf(tmp_path / "c", model), device="cpu")
    assert e.text_collapse_cosine > 0.98
    assert "collapsed" in caplog.text and "larger_clap_music" in caplog.text


def test_laion_checkpoint_round_trip(tmp_path: Path, enc: HFClapEncoder,
                                     rng: np.random.Generator) -> None:
    sd = {k: v.clone() for k, v in enc.model.state_dict().items()}
    laion = hf_to_laion_state_dict(sd)
    # Names as laion_clap's CLAP/HTSAT modules spell them (spot checks of the mapping).
    for key in ("text_branch.encoder.layer.0.attention.self.query.weight",
                "text_projection.0.weight", "text_projection.2.bias",
                "audio_branch.bn0.running_var", "audio_branch.patch_embed.proj.weight",
                "audio_branch.layers.0.blocks.0.attn.qkv.weight",
                "audio_branch.layers.0.blocks.0.attn.proj.bias",
                "audio_branch.layers.0.blocks.0.mlp.fc2.weight",
                "audio_branch.layers.0.blocks.0.norm1.weight",
                "audio_branch.layers.0.downsample.reduction.weight", "logit_scale_a"):
        assert key in laion, key
    assert laion_to_hf_state_dict(laion).keys() == sd.keys()
    # What a real checkpoint also carries: a DDP prefix and LAION-only tensors, all dropped.
    ckpt = {f"module.{k}": v for k, v in laion.items()}
    ckpt["module.audio_branch.spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(3)
    ckpt["module.audio_branch.head.weight"] = torch.zeros(3)
    ckpt["module.text_transform.sequential.0.weight"] = torch.zeros(3)
    ckpt["module.audio_branch.layers.0.blocks.0.attn_mask"] = torch.zeros(3)
    pt = tmp_path / "tiny_laion.pt"
    torch.save({"epoch": 1, "state_dict": ckpt}, pt)

    lc = LaionClapEncoder(pt, amodel=None, tokenizer_path=enc.path, device="cpu")
    assert lc.id.startswith("laion-clap@") and lc.dim == enc.dim
    np.testing.assert_allclose(lc.embed_text(CAPTIONS), enc.embed_text(CAPTIONS), atol=1e-5)
    waves = [_wave(rng, 4.0)]
    np.testing.assert_allclose(lc.embed_windows(waves), enc.embed_windows(waves), atol=1e-4)

    with pytest.raises(RetrievalError, match="HTSAT-base"):
        LaionClapEncoder(pt, amodel="HTSAT-base", tokenizer_path=enc.path, device="cpu")
    with pytest.raises(WeightsNotFoundError, match="roberta-base"):
        LaionClapEncoder(pt, amodel=None, device="cpu")
    with pytest.raises(WeightsNotFoundError, match="music_audioset"):
        LaionClapEncoder(tmp_path / "missing.pt", tokenizer_path=enc.path)
    # Through the registry, with the tokenizer found beside the checkpoint.
    (tmp_path / "roberta-base").symlink_to(enc.path)
    via_registry = load_encoder("laion-clap", path=pt, device="cpu", amodel=None)
    assert via_registry.id == lc.id


def test_registry(hf_dir: Path) -> None:
    with pytest.raises(RetrievalError, match="hf-clap") as e:
        load_encoder("nope")
    assert "laion-clap" in str(e.value) and "default" in str(e.value)
    with pytest.raises(RetrievalError, match="path"):
        load_encoder("hf-clap")
    e2 = load_encoder("hf-clap", path=hf_dir, device="cpu")
    assert e2.id.startswith("hf-clap@")
