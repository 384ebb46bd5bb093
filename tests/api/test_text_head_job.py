"""``train-encoder --text-only`` end to end: the real caches, MiniLM, the trainer, the saved file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from api.encoder_jobs import cache_key, cached_feature_set, train_text_head
from generation.demo.training_data import FeatureSet
from generation.symbolic.render import training_soundfonts
from retrieval.encoders.default import ClapMini, DefaultEncoder
from retrieval.encoders.features import frames_for
from retrieval.encoders.training import TextHeadConfig, save_weights


def _rows(n: int, split: str) -> list[dict]:
    kinds = [("jig", "compound", "6/8", "fast", "major", "flute", "woodwind"),
             ("waltz", "triple", "3/4", "slow", "minor", "accordion", "free reed")]
    rows = []
    for i in range(n):
        tune, mclass, meter, tempo, mode, inst, fam = kinds[i % 2]
        rows.append({"piece_id": f"{split}-{i}", "tune_type": tune, "meter_class": mclass, "meter": meter,
                     "tempo_bucket": tempo, "tempo_bpm": 120 if tempo == "fast" else 70, "mode": mode,
                     "mode_family": mode, "key": "D", "instruments": [inst], "ensemble": f"solo {inst}",
                     "instrument_family": fam, "tradition": "Irish", "composer": None, "collection": None,
                     "captions": [f"a {tempo} {tune} on the {inst}"]})
    return rows


def _write(cache: Path, name: str, rows: list[dict], key: dict) -> None:
    """A feature set whose two kinds differ in their mel bands, stored under ``key`` as the job asks."""
    rng = np.random.default_rng(len(rows))
    t = frames_for(20.0)
    mel = rng.normal(-1.0, 0.1, (len(rows), 64, t)).astype(np.float16)
    for i, r in enumerate(rows):
        mel[i, slice(0, 16) if r["tune_type"] == "jig" else slice(48, 64)] += 2.0
    fs = FeatureSet(mel, rng.random((len(rows), 24, t)).astype(np.float16),
                    rng.random((len(rows), t)).astype(np.float16), rows)
    fs.save(cache / f"{name}.npz")
    (cache / f"{name}.json").write_text(cache_key(**key))


def test_text_only_training_keeps_the_audio_vectors_and_saves_a_loadable_encoder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sfs = list(training_soundfonts())
    common = {"soundfonts": sfs, "workers": None, "variety": "train", "production": True}
    _write(cache, "train-v2", _rows(64, "train"),
           {"size": 64, "seed": 0, "splits": ["train"], "renders": 1, **common})
    _write(cache, "validation-v2", _rows(48, "val"),
           {"size": 10, "seed": 1, "splits": ["validation"], "renders": 2, **common})
    # the job must find these caches, not render: the same arguments give a cache hit
    logs: list[str] = []
    assert cached_feature_set(cache, "train-v2", logs.append, size=64, seed=0, splits=("train",), renders=1,
                              soundfonts=tuple(sfs), workers=None, variety="train", production=True)
    assert logs and logs[0].startswith("using cached")

    torch.manual_seed(0)
    base = tmp_path / "base.safetensors"
    save_weights(ClapMini(dim=16, width=2), base, {"note": "random init for tests"})
    out = tmp_path / "text.safetensors"
    info = train_text_head(cache, base, out, size=64, val_size=10, extra_captions=2,
                           cfg=TextHeadConfig(steps=240, batch_size=32, lr=3e-3, eval_every=80, threads=1),
                           log=logs.append)
    assert not any("built" in line for line in logs), "the job re-rendered instead of using the caches"
    assert info["data"]["captions"] > 64  # the catalog's caption plus varied ones per clip
    assert len(info["history"]) == 3 and info["best_step"] > 0 and info["base"]["encoder_id"].startswith("clap-mini@")

    before, after = DefaultEncoder(base, device="cpu"), DefaultEncoder(out, device="cpu")
    wave = np.random.default_rng(3).normal(0, 0.1, 16000 * 12).astype(np.float32)
    assert np.array_equal(before.embed_audio([wave]), after.embed_audio([wave]))
    assert before.id != after.id
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["text_head_config"]["steps"] == 240 and saved["config"] == {"dim": 16, "width": 2}
