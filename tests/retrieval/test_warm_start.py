"""Warm-starting a richer encoder from committed weights: it starts as exactly the old model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from retrieval.encoders.default import V1_WEIGHTS, ClapMini
from retrieval.encoders.features import frames_for
from retrieval.encoders.training import TrainConfig, Trainer, warm_start

T = frames_for(10.0)


def _feats(n: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"logmel": torch.randn(n, 64, T, generator=g), "chroma": torch.rand(n, 24, T, generator=g),
            "onset": torch.rand(n, T, generator=g)}


@pytest.mark.parametrize("rhythm", [2, 3])
def test_committed_weights_widen_into_a_richer_rhythm_input(rhythm: int) -> None:
    state = load_file(str(V1_WEIGHTS))
    old = ClapMini()
    old.load_state_dict(state)
    new = ClapMini(rhythm=rhythm)
    widened = warm_start(new, state)
    assert widened == ["audio.rhythm.0.weight"]
    w = new.state_dict()["audio.rhythm.0.weight"]
    n_old = state["audio.rhythm.0.weight"].shape[1]
    assert w.shape[1] > n_old and torch.count_nonzero(w[:, n_old:]) == 0
    old.eval()
    new.eval()
    with torch.no_grad():
        feats = _feats()
        a, b = old.embed_audio_feats(feats), new.embed_audio_feats(feats)
    # the new inputs are computed but weigh nothing yet: the same embeddings as the old model
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    vec = torch.randn(2, 384)
    torch.testing.assert_close(new.embed_text_vecs(vec), old.embed_text_vecs(vec))


def test_trainer_takes_the_initial_state_and_reports_what_grew() -> None:
    state = ClapMini().state_dict()
    trainer = Trainer(TrainConfig(rhythm=3), torch.randn(4, 384).numpy(), ["a", "b", "c", "d"],
                      init_state=state)
    assert trainer.widened == ["audio.rhythm.0.weight"]
    torch.testing.assert_close(trainer.model.state_dict()["audio.fuse.0.weight"], state["audio.fuse.0.weight"])


def test_incompatible_weights_are_refused_with_the_tensor_named() -> None:
    small = ClapMini(dim=256).state_dict()
    with pytest.raises(ValueError, match="audio_proj.weight"):
        warm_start(ClapMini(), small)
    # a richer model cannot be squeezed back into a poorer one
    with pytest.raises(ValueError, match="audio.rhythm.0.weight"):
        warm_start(ClapMini(), ClapMini(rhythm=3).state_dict())
    partial = dict(ClapMini().state_dict())
    partial.pop("logit_scale")
    with pytest.raises(ValueError, match="lack"):
        warm_start(ClapMini(), partial)
