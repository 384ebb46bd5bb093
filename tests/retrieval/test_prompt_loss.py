"""The prompt loss: every clip's attributes classified by short phrasings through the text tower."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from retrieval.caption_variety import attribute_phrases
from retrieval.encoders.training import LABELS, TUNE_TYPES, TrainConfig, Trainer, label_names, prompt_bank


def _embed(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for MiniLM: one random vector per distinct string."""
    rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(384) for t in texts]
    return np.stack(rows).astype(np.float32)


def test_phrasings_cover_every_class_and_never_two_classes() -> None:
    phrases = attribute_phrases(tuple(TUNE_TYPES))
    for attr in ("meter_class", "mode_family", "tempo_bucket"):
        assert set(phrases[attr]) == set(LABELS[attr])
    assert set(phrases["tune_type"]) == set(TUNE_TYPES)
    for attr, by_class in phrases.items():
        seen: dict[str, str] = {}
        for c, ps in by_class.items():
            assert ps, (attr, c)
            for p in ps:
                assert seen.setdefault(p, c) == c, f"{p!r} names both {seen[p]} and {c}"
    assert "tune_type" not in attribute_phrases()  # only with the tune-type head


def test_bank_is_in_the_heads_class_order_and_cycles_short_lists() -> None:
    names = label_names(TrainConfig())
    phrases = {"mode_family": {"minor": ["a sad key"], "major": ["a bright key", "a sunny key", "a glad key"]}}
    vecs, counts = prompt_bank(phrases, names, _embed)["mode_family"]
    assert names["mode_family"] == ["major", "minor"]
    assert vecs.shape == (2, 3, 384) and counts.tolist() == [3.0, 1.0]
    np.testing.assert_allclose(vecs[1, 2].numpy(), _embed(["a sad key"])[0])  # cycled
    np.testing.assert_allclose(vecs[0, 1].numpy(), _embed(["a sunny key"])[0])
    with pytest.raises(ValueError, match="no phrasings for mode_family"):
        prompt_bank({"mode_family": {"major": ["x"]}}, names, _embed)


def test_loss_is_low_when_a_clip_sits_on_its_class_phrase_and_trains_both_towers() -> None:
    cfg = TrainConfig(prompt_weight=1.0)
    phrases = {"mode_family": {"major": ["a bright key"], "minor": ["a sad key"]}}
    bank = prompt_bank(phrases, label_names(cfg), _embed)
    trainer = Trainer(cfg, _embed(["x", "y"]), ["x", "y"], prompt_bank=bank)
    trainer.model.eval()
    with torch.no_grad():
        text = F.normalize(trainer.model.embed_text_vecs(bank["mode_family"][0][:, 0]), dim=-1)
    labels = {"mode_family": torch.tensor([0, 1])}
    w = {"mode_family": torch.ones(2)}
    scale = torch.tensor(20.0)
    right = trainer._prompt_loss(text, scale, labels, w)["mode_family"].detach()
    wrong = trainer._prompt_loss(text.flip(0), scale, labels, w)["mode_family"].detach()
    assert float(right) < 0.1 < float(wrong)
    audio = torch.randn(2, 512, requires_grad=True)
    trainer._prompt_loss(F.normalize(audio, dim=-1), scale, labels, w)["mode_family"].backward()
    assert audio.grad is not None and audio.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.text.parameters())
    # unknown labels (-1) are left out, and an attribute with none known adds no term
    assert trainer._prompt_loss(text, scale, {"mode_family": torch.tensor([-1, -1])}, w) == {}
