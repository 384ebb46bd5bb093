"""The embedded default encoder: interface contract, windowing, training loop, weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.encoders import load_encoder
from retrieval.encoders.default import DEFAULT_WEIGHTS, ClapMini, DefaultEncoder, split_windows
from retrieval.encoders.features import SAMPLE_RATE, compute_features, frames_for
from retrieval.encoders.training import LABELS, TrainConfig, TrainData, Trainer, save_weights
from retrieval.errors import RetrievalError, WeightsNotFoundError


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = ClapMini(dim=16, width=2)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(model, path, {"note": "random init for tests"})
    return path


@pytest.fixture(scope="module")
def tiny(tiny_weights: Path) -> DefaultEncoder:
    return DefaultEncoder(tiny_weights, device="cpu")


def _tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2).astype(np.float32)


def test_contract_shapes_norms_determinism(tiny: DefaultEncoder) -> None:
    a = tiny.embed_audio([_tone(3.0), _tone(12.0, 330.0)])
    t = tiny.embed_text(["a fast jig on the fiddle", "a slow chorale for choir", ""])
    assert a.shape == (2, 16) and t.shape == (3, 16)
    assert a.dtype == np.float32 and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, tiny.embed_audio([_tone(3.0), _tone(12.0, 330.0)]))
    assert tiny.embed_audio([]).shape == (0, 16) and tiny.embed_text([]).shape == (0, 16)


def test_batch_equals_single(tiny: DefaultEncoder) -> None:
    waves = [_tone(4.0), _tone(25.0, 220.0), _tone(11.0, 660.0)]
    batch = tiny.embed_audio(waves)
    single = np.concatenate([tiny.embed_audio([w]) for w in waves])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_long_track_is_the_mean_of_its_windows(tiny: DefaultEncoder) -> None:
    rng = np.random.default_rng(0)
    wave = np.concatenate([_tone(10.0, 220.0), 0.1 * rng.standard_normal(SAMPLE_RATE * 10).astype(np.float32),
                           _tone(15.0, 880.0)])
    windows = split_windows(wave, SAMPLE_RATE, 10.0, 5.0)
    assert len(windows) == 6 and all(len(w) == 10 * SAMPLE_RATE for w in windows)
    with torch.inference_mode():
        raw = tiny.model.embed_audio_feats(compute_features(torch.from_numpy(np.stack(windows))))
    expected = torch.nn.functional.normalize(raw.mean(0), dim=0).numpy()
    np.testing.assert_allclose(tiny.embed_audio([wave])[0], expected, atol=1e-5)
    # the end of the track matters: a different last third gives a different embedding
    other = wave.copy()
    other[-SAMPLE_RATE * 8:] = 0.1 * rng.standard_normal(SAMPLE_RATE * 8)
    assert not np.allclose(tiny.embed_audio([other])[0], tiny.embed_audio([wave])[0], atol=1e-6)


def test_windows_cover_short_and_ragged_tracks() -> None:
    assert [len(w) for w in split_windows(np.ones(100, np.float32), 10, 10.0, 5.0)] == [100]
    wins = split_windows(np.arange(173, dtype=np.float32), 10, 10.0, 5.0)
    assert wins[-1][-1] == 172  # the tail is covered, not dropped


def test_id_names_the_weights(tiny_weights: Path, tmp_path: Path) -> None:
    a = DefaultEncoder(tiny_weights, device="cpu")
    assert a.id.startswith("clap-mini@") and len(a.id) == len("clap-mini@") + 12
    torch.manual_seed(1)
    other = tmp_path / "other.safetensors"
    save_weights(ClapMini(dim=16, width=2), other, {})
    assert DefaultEncoder(other, device="cpu").id != a.id


def test_missing_or_wrong_weights_fail_clearly(tmp_path: Path, tiny_weights: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="not found at .*nope.safetensors"):
        DefaultEncoder(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    save_file({"foo": torch.zeros(3)}, str(bad))
    with pytest.raises(RetrievalError, match="do not match"):
        DefaultEncoder(bad)
    with pytest.raises(RetrievalError, match="device"):
        DefaultEncoder(tiny_weights, device="tpu")


def test_bad_waveforms_are_refused(tiny: DefaultEncoder) -> None:
    with pytest.raises(RetrievalError, match="non-empty 1-D"):
        tiny.embed_audio([np.zeros((2, 100), np.float32)])
    with pytest.raises(RetrievalError, match="non-empty 1-D"):
        tiny.embed_audio([np.zeros(0, np.float32)])


def test_committed_weights_load_through_the_registry() -> None:
    enc = load_encoder("default", device="cpu")
    assert enc.dim == 512 and enc.sample_rate == 16000 and enc.id.startswith("clap-mini@")
    card = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    assert card["config"]["dim"] == 512 and "best_metrics" in card
    v = enc.embed_text(["a lively jig played on the fiddle", "a slow sacred chorale sung by a choir",
                        "a lively jig played on a fiddle"])
    # the trained text projection separates different descriptions and keeps paraphrases close
    assert float(v[0] @ v[2]) > float(v[0] @ v[1])


def test_training_loop_learns_a_separable_toy_task(tmp_path: Path) -> None:
    """Two kinds of 'audio' (loud low band vs loud high band), each with its caption: a few
    epochs of the real trainer must align them (validation R@1 goes to 1)."""
    rng = np.random.default_rng(0)
    n, t = 48, frames_for(12.0)
    mel = rng.normal(-1.0, 0.1, (n, 64, t)).astype(np.float16)
    kind = np.arange(n) % 2
    mel[kind == 0, :16] += 2.0
    mel[kind == 1, 48:] += 2.0
    chroma = rng.random((n, 24, t)).astype(np.float16)
    onset = rng.random((n, t)).astype(np.float16)
    caption_vecs = rng.normal(0, 1, (2, 384)).astype(np.float32)
    labels = {k: np.full(n, -1, np.int64) for k in LABELS}
    labels["tempo_bucket"] = kind.astype(np.int64)
    data = TrainData(mel, chroma, onset, [[int(k)] for k in kind], labels)
    cfg = TrainConfig(dim=16, width=2, epochs=12, batch_size=16, lr=3e-3, patience=20, threads=1)
    trainer = Trainer(cfg, caption_vecs, ["low", "high"])

    def validate(model: ClapMini) -> dict[str, float]:
        feats = {"logmel": torch.from_numpy(mel[:, :, :501].astype(np.float32)),
                 "chroma": torch.from_numpy(chroma[:, :, :501].astype(np.float32)),
                 "onset": torch.from_numpy(onset[:, :501].astype(np.float32))}
        with torch.inference_mode():
            a = torch.nn.functional.normalize(model.embed_audio_feats(feats), dim=-1)
            c = torch.nn.functional.normalize(model.embed_text_vecs(torch.from_numpy(caption_vecs)), dim=-1)
        acc = float(((a @ c.T).argmax(1).numpy() == kind).mean())
        return {"acc": acc, "score": acc}

    info = trainer.fit(data, validate, log=lambda s: None)
    assert info["best_metrics"]["acc"] == 1.0
    losses = [h["train_contrastive"] for h in info["history"]]
    assert losses[-1] < losses[0]
    out = tmp_path / "trained.safetensors"
    save_weights(trainer.model, out, info)
    enc = DefaultEncoder(out, device="cpu")
    assert enc.dim == 16 and json.loads(out.with_suffix(".json").read_text())["best_epoch"] >= 1


def test_text_head_training_moves_only_the_text_side(tmp_path: Path) -> None:
    """Random audio embeddings in two clusters, two captions drawn at random vectors: the
    text-only trainer must align captions with their cluster (accuracy 1 from chance) while
    every audio-tower weight, and so every catalog vector, stays bit-identical."""
    from retrieval.encoders.training import TextHeadConfig, fit_text_head

    torch.manual_seed(0)
    model = ClapMini(dim=16, width=2)
    audio_before = {k: v.clone() for k, v in model.state_dict().items()
                    if not k.startswith("text.") and k != "logit_scale"}
    text_before = {k: v.clone() for k, v in model.text.state_dict().items()}
    rng = np.random.default_rng(0)
    n = 64
    kind = np.arange(n) % 2
    centres = rng.normal(0, 1, (2, 16))
    views = centres[kind][:, None, :] + rng.normal(0, 0.3, (n, 2, 16))
    views /= np.linalg.norm(views, axis=-1, keepdims=True)
    caption_vecs = rng.normal(0, 1, (2, 384)).astype(np.float32)
    pooled = torch.from_numpy(views.mean(1).astype(np.float32))

    def validate(m: ClapMini) -> dict[str, float]:
        with torch.inference_mode():
            c = torch.nn.functional.normalize(m.embed_text_vecs(torch.from_numpy(caption_vecs)), dim=-1)
        acc = float(((pooled @ c.T).argmax(1).numpy() == kind).mean())
        return {"acc": acc, "score": acc}

    info = fit_text_head(model, views, caption_vecs, [[int(k)] for k in kind], ["low", "high"], validate,
                         TextHeadConfig(steps=200, batch_size=32, lr=3e-3, eval_every=50, patience=10, threads=1),
                         log=lambda s: None)
    assert info["best_metrics"]["acc"] == 1.0
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in audio_before.items())
    assert any(not torch.equal(model.text.state_dict()[k], v) for k, v in text_before.items())
    assert all(not p.requires_grad for p in model.parameters())
