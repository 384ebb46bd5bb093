"""Contrastive training of the default encoder (``clap-mini``).

Objective: symmetric InfoNCE between audio windows and captions, with a learned temperature,
plus small auxiliary classification heads on the audio side (instrument family, tempo bucket,
mode, meter). The heads exist because InfoNCE alone lets the audio tower ignore the hard
attributes (mode, meter) whenever timbre already separates a batch; with them the tower must
encode those attributes, and the contrastive loss then aligns them with words.

Captions that are identical strings inside a batch ("A jig") are all positives (soft targets),
not false negatives. The text tower is frozen MiniLM: caption vectors are computed once.

Everything here takes arrays; rendering the data lives in ``generation.demo.training_data``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retrieval.encoders.default import ClapMini
from retrieval.encoders.features import frames_for

LABELS: dict[str, list[str]] = {
    "instrument_family": ["strings", "keyboard", "organ", "woodwind", "brass", "voice",
                          "free reed", "plucked", "bagpipes", "mixed"],
    "tempo_bucket": ["slow", "moderate", "fast"],
    "mode_family": ["major", "minor"],
    "meter_class": ["duple", "triple", "compound"],
}
#: v2's extra auxiliary head (``TrainConfig.tune_type_head``): tune types are what the hidden
#: folk evaluation asks for ("a jig"), and a jig vs a reel is metre plus note rate.
TUNE_TYPES = ["jig", "reel", "hornpipe", "slip jig", "air", "strathspey", "march", "waltz", "polka",
              "folk song", "chorale", "quartet movement", "mass movement", "madrigal", "motet"]


def label_names(cfg: TrainConfig) -> dict[str, list[str]]:
    """The auxiliary heads of a configuration: v1's four, plus tune type when asked."""
    return {**LABELS, "tune_type": TUNE_TYPES} if cfg.tune_type_head else dict(LABELS)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (saved beside the weights)."""

    dim: int = 512
    width: int = 16
    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.02
    crop_s: float = 10.0
    aux_weight: float = 0.3
    # 0.5 was tried (v4): +0.015 caption R@10, no paraphrase gain, -0.016 instrument accuracy on
    # the held-out soundfont; off by default so train-encoder reproduces the committed weights.
    geometry_weight: float = 0.0
    patience: int = 8
    time_budget_s: float = 30 * 60
    seed: int = 0
    threads: int = 2
    # v2: 2 adds the accent-free rhythm features (retrieval/encoders/rhythm.py)
    rhythm: int = 1
    tune_type_head: bool = False
    # weight of the prompt loss (Trainer._prompt_loss); 0 reproduces the committed weights
    prompt_weight: float = 0.0


@dataclass
class TrainData:
    """Arrays for training: features, one caption-id list per clip, labels."""

    logmel: np.ndarray  # float16 [N, 64, T]
    chroma: np.ndarray  # float16 [N, 24, T]
    onset: np.ndarray  # float16 [N, T]
    caption_ids: list[list[int]]  # indexes into the caption table
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # int64 [N], -1 = unknown


def label_arrays(rows: Sequence[dict[str, Any]], names: dict[str, list[str]] | None = None) -> dict[str, np.ndarray]:
    """Integer labels per attribute (-1 where a row has none); ``names`` default: :data:`LABELS`."""
    out = {}
    for name, classes in (names or LABELS).items():
        out[name] = np.array([classes.index(r[name]) if r.get(name) in classes else -1 for r in rows],
                             dtype=np.int64)
    return out


def class_weights(labels: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Cross-entropy class weights per auxiliary head: balanced, then softened by a square root.

    A rare class (bagpipes among a catalog of fiddles) would otherwise barely move its head;
    fully balanced weights would let a handful of clips dominate it, hence the square root.

    Args:
        labels: attribute -> int64 ``[N]`` class indexes (-1 = unknown, not counted).

    Returns:
        attribute -> float32 ``[classes]``; 0 for a class without examples.
    """
    class_w = {}
    for name, y in labels.items():
        classes = TUNE_TYPES if name == "tune_type" else LABELS[name]
        counts = np.bincount(y[y >= 0], minlength=len(classes)).astype(np.float32)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(classes), 0.0)
        class_w[name] = torch.from_numpy(np.sqrt(w).astype(np.float32))  # balanced, softened
    return class_w


def info_nce(logits: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over ``logits`` ``[B, B]`` (audio rows, caption columns).

    ``keys``: one id per distinct caption string; captions with equal ids are joint positives
    (soft targets), so two clips captioned "A jig" in one batch are not each other's negatives.
    """
    target = (keys[:, None] == keys[None, :]).float()
    target = target / target.sum(1, keepdim=True)
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
                  + torch.sum(-target * F.log_softmax(logits.T, 1), 1).mean())


def _crop(data: TrainData, idx: np.ndarray, frames: int, rng: np.random.Generator,
          augment: bool) -> dict[str, torch.Tensor]:
    t = data.logmel.shape[-1]
    starts = rng.integers(0, max(1, t - frames + 1), size=len(idx)) if augment else np.zeros(len(idx), int)
    mel = np.stack([data.logmel[i, :, s:s + frames] for i, s in zip(idx, starts, strict=True)]).astype(np.float32)
    chroma = np.stack([data.chroma[i, :, s:s + frames] for i, s in zip(idx, starts, strict=True)]).astype(np.float32)
    onset = np.stack([data.onset[i, s:s + frames] for i, s in zip(idx, starts, strict=True)]).astype(np.float32)
    if augment:
        # EQ: a smooth random curve over mel bands (+-3 dB in these units: 20 dB = 1.0)
        k = np.arange(mel.shape[1])[None, :] / mel.shape[1]
        curve = sum(rng.normal(0, 0.06, (len(idx), 1)) * np.cos(np.pi * j * k) for j in range(1, 4))
        mel = mel + curve[:, :, None].astype(np.float32)
        # time masks: up to two blocks of 0.5 s
        for b in range(len(idx)):
            for _ in range(rng.integers(0, 3)):
                s = rng.integers(0, frames - 25)
                mel[b, :, s:s + 25] = mel[b].min()
    return {"logmel": torch.from_numpy(mel), "chroma": torch.from_numpy(chroma),
            "onset": torch.from_numpy(onset)}


class Trainer:
    """Owns the model, the auxiliary heads and the loop; reports per-epoch metrics."""

    def __init__(self, cfg: TrainConfig, caption_vecs: np.ndarray, caption_texts: Sequence[str],
                 init_state: dict[str, torch.Tensor] | None = None,
                 prompt_bank: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        self.cfg = cfg
        # attribute -> (MiniLM vectors [classes, K, 384] cycled to K, phrasings per class [classes])
        self.prompt_bank = prompt_bank or {}
        torch.manual_seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        self.model = ClapMini(dim=cfg.dim, width=cfg.width, rhythm=cfg.rhythm)
        self.widened = warm_start(self.model, init_state) if init_state is not None else []
        self.heads = nn.ModuleDict({k: nn.Linear(512, len(v)) for k, v in label_names(cfg).items()})
        self.caption_vecs = torch.from_numpy(caption_vecs.astype(np.float32))
        # identical strings share an id, so equal captions in a batch become joint positives
        uniq: dict[str, int] = {}
        self.text_key = torch.tensor([uniq.setdefault(t, len(uniq)) for t in caption_texts])

    def _loss(self, feats: dict[str, torch.Tensor], cap: torch.Tensor,
              labels: dict[str, torch.Tensor],
              class_w: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        hidden = self.model.audio_hidden(feats)
        a = F.normalize(self.model.audio_proj(hidden), dim=-1)
        t = F.normalize(self.model.embed_text_vecs(self.caption_vecs[cap]), dim=-1)
        scale = self.model.logit_scale.exp().clamp(max=100.0)
        loss_c = info_nce(scale * a @ t.T, self.text_key[cap])
        loss = loss_c
        parts = {"contrastive": float(loss_c.detach())}
        if self.cfg.geometry_weight > 0:
            # Keep the sentence encoder's geometry: captions MiniLM finds alike stay alike after
            # the projection, so phrasings never seen in training land near their meaning.
            src = F.normalize(self.caption_vecs[cap], dim=-1)
            loss_g = F.mse_loss(t @ t.T, src @ src.T)
            loss = loss + self.cfg.geometry_weight * loss_g
            parts["geometry"] = float(loss_g.detach())
        for name, head in self.heads.items():
            y = labels[name]
            ok = y >= 0
            if ok.any():
                la = F.cross_entropy(head(hidden[ok]), y[ok], weight=class_w[name])
                loss = loss + self.cfg.aux_weight * la
                parts[name] = float(la.detach())
        if self.cfg.prompt_weight > 0:
            for name, lp in self._prompt_loss(a, scale, labels, class_w).items():
                loss = loss + self.cfg.prompt_weight * lp
                parts[f"prompt_{name}"] = float(lp.detach())
        return loss, parts

    def _prompt_loss(self, audio: torch.Tensor, scale: torch.Tensor, labels: dict[str, torch.Tensor],
                     class_w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Zero-shot classification of each clip's attributes by one random phrasing per class.

        The class "weights" are the text tower's embeddings of short phrases that name one value
        ("a tune in three", "a minor-key melody"), so the loss moves the text side's attribute
        words and the audio side's attribute features together, inside the joint space the
        search uses. InfoNCE on full captions cannot do this when another fact (the collection,
        the instrument) already tells the clips of a batch apart: the hidden metre errors were
        duple folk songs and masses nearest "triple time", a word learned from which pieces
        carry it, not from what three beats sound like.
        """
        out = {}
        for name, (vecs, counts) in self.prompt_bank.items():
            y = labels[name]
            ok = y >= 0
            if not ok.any():
                continue
            k = (torch.rand(len(counts)) * counts).long()
            cls = F.normalize(self.model.embed_text_vecs(vecs[torch.arange(len(counts)), k]), dim=-1)
            out[name] = F.cross_entropy(scale * audio[ok] @ cls.T, y[ok], weight=class_w[name])
        return out

    def fit(self, train: TrainData, validate: Callable[[ClapMini], dict[str, float]],
            log: Callable[[str], None] = print) -> dict[str, Any]:
        """Train until the epoch budget, the time budget or early stopping; keep the best."""
        cfg = self.cfg
        rng = np.random.default_rng(cfg.seed)
        frames = frames_for(cfg.crop_s)
        params = list(self.model.parameters()) + list(self.heads.parameters())
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        n = len(train.caption_ids)
        steps_per_epoch = max(1, n // cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        warmup = max(1, min(100, total // 10))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        class_w = class_weights(train.labels)
        labels_t = {k: torch.from_numpy(v) for k, v in train.labels.items()}
        best: dict[str, Any] = {"score": -1.0}
        history = []
        start = time.time()
        bad = 0
        for epoch in range(cfg.epochs):
            self.model.train()
            self.heads.train()
            perm = rng.permutation(n)
            agg: dict[str, float] = {}
            for s in range(steps_per_epoch):
                idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                feats = _crop(train, idx, frames, rng, augment=True)
                cap = torch.tensor([train.caption_ids[i][int(rng.integers(len(train.caption_ids[i])))]
                                    for i in idx])
                loss, parts = self._loss(feats, cap, {k: v[idx] for k, v in labels_t.items()}, class_w)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                sched.step()
                for k, v in parts.items():
                    agg[k] = agg.get(k, 0.0) + v / steps_per_epoch
            self.model.eval()
            metrics = validate(self.model)
            elapsed = time.time() - start
            history.append({"epoch": epoch + 1, "elapsed_s": round(elapsed, 1),
                            **{f"train_{k}": round(v, 4) for k, v in agg.items()}, **metrics})
            log(json.dumps(history[-1]))
            if metrics["score"] > best["score"]:
                best = {"score": metrics["score"], "epoch": epoch + 1, "metrics": metrics,
                        "state": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}
                bad = 0
            else:
                bad += 1
            per_epoch = elapsed / (epoch + 1)
            if bad >= cfg.patience:
                log(f"early stop at epoch {epoch + 1} (best {best['epoch']})")
                break
            if elapsed + per_epoch > cfg.time_budget_s:
                log(f"time budget reached after epoch {epoch + 1}")
                break
        self.model.load_state_dict(best["state"])
        return {"best_epoch": best["epoch"], "best_metrics": best["metrics"], "history": history,
                "train_clips": n, "train_config": asdict(cfg), "train_time_s": round(time.time() - start, 1)}


def prompt_bank(phrases: dict[str, dict[str, list[str]]], names: dict[str, list[str]],
                embed: Callable[[list[str]], np.ndarray]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """:attr:`Trainer.prompt_bank` from phrasings per attribute and class, in the heads' class order.

    Classes without phrasings are an error: the loss would silently never predict them.
    """
    bank = {}
    for attr, by_class in phrases.items():
        classes = names[attr]
        lists = [by_class.get(c) or [] for c in classes]
        if not all(lists):
            empty = [c for c, ps in zip(classes, lists, strict=True) if not ps]
            raise ValueError(f"prompt bank: no phrasings for {attr} {empty}")
        k = max(len(lst) for lst in lists)
        flat = embed([lst[j % len(lst)] for lst in lists for j in range(k)])
        vecs = torch.from_numpy(np.asarray(flat, np.float32)).reshape(len(classes), k, -1)
        bank[attr] = (vecs, torch.tensor([float(len(lst)) for lst in lists]))
    return bank


def warm_start(model: ClapMini, state: dict[str, torch.Tensor]) -> list[str]:
    """Load ``state`` (e.g. the committed v1 weights) into ``model``, widening inputs that grew.

    A model with a richer rhythm input (``rhythm`` 2 or 3) has the same layers as v1 except the
    first linear layer of the rhythm branch, whose input appends the new features after v1's.
    That layer takes v1's weights in its leading columns and zeros in the new ones, so the warm
    model computes exactly what the old one did and training can only add what the new inputs
    carry: what it already knew (mode, timbre) is the starting point, not something to relearn.

    Returns the names of the widened tensors. Raises ValueError on any other mismatch.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ValueError(f"warm start: the weights lack {missing[:5]}")
    widened = []
    for name, src in state.items():
        dst = own.get(name)
        if dst is None:
            raise ValueError(f"warm start: unexpected tensor {name}")
        if dst.shape == src.shape:
            own[name] = src.to(dst.dtype)
        elif dst.dim() == 2 and dst.shape[0] == src.shape[0] and dst.shape[1] > src.shape[1]:
            grown = torch.zeros_like(dst)
            grown[:, :src.shape[1]] = src
            own[name] = grown
            widened.append(name)
        else:
            raise ValueError(f"warm start: {name} is {tuple(src.shape)} in the weights, "
                             f"{tuple(dst.shape)} in the model")
    model.load_state_dict(own)
    return widened


def save_weights(model: ClapMini, path: Path, info: dict[str, Any]) -> None:
    """Weights as safetensors (never pickle) and a JSON sidecar with config and metrics."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    path.with_suffix(".json").write_text(json.dumps({"config": model.config, **info}, indent=2))


@dataclass(frozen=True)
class TextHeadConfig:
    """Hyper-parameters of :func:`fit_text_head` (saved beside the weights)."""

    steps: int = 3000
    batch_size: int = 512
    lr: float = 5e-4
    weight_decay: float = 0.01
    eval_every: int = 250
    patience: int = 4
    seed: int = 0
    threads: int = 2
    # pull towards the starting head's embedding of each caption: 1 - cos(new, start), weighted
    anchor_weight: float = 0.0


def fit_text_head(model: ClapMini, audio_views: np.ndarray, caption_vecs: np.ndarray,
                  caption_ids: Sequence[Sequence[int]], caption_texts: Sequence[str],
                  validate: Callable[[ClapMini], dict[str, float]], cfg: TextHeadConfig | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Retrain only the text projection (and the temperature) against a frozen audio tower.

    Why: the audio side decides what the catalog's vectors are; retraining it strands every
    index, prior, weak-match calibration and generator built on it. The text side decides
    how well words people write find those vectors. With the audio frozen, the audio
    embeddings are computed once (``audio_views`` ``[N, V, dim]``, unit rows: each 10 s window
    and their pooled mean), so thousands of steps over many more caption phrasings cost
    seconds per epoch and the catalog's embeddings do not change.

    Objective: the same symmetric InfoNCE as :class:`Trainer` (identical strings are joint
    positives). Starts from the model's current text head; keeps the best validation score.
    """
    cfg = cfg or TextHeadConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    opt, sched = _text_head_optimiser(model, cfg)
    audio = torch.from_numpy(audio_views.astype(np.float32))
    vecs = torch.from_numpy(caption_vecs.astype(np.float32))
    uniq: dict[str, int] = {}
    text_key = torch.tensor([uniq.setdefault(t, len(uniq)) for t in caption_texts])
    n, n_views = audio.shape[0], audio.shape[1]
    model.eval()
    anchor = None
    if cfg.anchor_weight > 0:
        with torch.no_grad():
            anchor = F.normalize(model.embed_text_vecs(vecs), dim=-1)
    best = {"score": validate(model)["score"], "step": 0, **_text_snapshot(model)}
    log(f"step 0 (base text head): score {best['score']:.4f}")
    history: list[dict[str, Any]] = []
    start, bad, agg = time.time(), 0, 0.0
    for step in range(1, cfg.steps + 1):
        idx = rng.choice(n, size=min(cfg.batch_size, n), replace=False)
        a = audio[idx, rng.integers(0, n_views, size=len(idx))]
        cap = torch.tensor([caption_ids[i][int(rng.integers(len(caption_ids[i])))] for i in idx])
        loss = _text_head_loss(model, a, vecs[cap], text_key[cap],
                               None if anchor is None else anchor[cap], cfg.anchor_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        agg += float(loss.detach()) / cfg.eval_every
        if step % cfg.eval_every == 0 or step == cfg.steps:
            metrics = validate(model)
            history.append({"step": step, "elapsed_s": round(time.time() - start, 1),
                            "train_contrastive": round(agg, 4), **metrics})
            log(json.dumps(history[-1]))
            agg = 0.0
            if metrics["score"] > best["score"]:
                best = {"score": metrics["score"], "step": step, "metrics": metrics, **_text_snapshot(model)}
                bad = 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    log(f"early stop at step {step} (best {best['step']})")
                    break
    _restore_text(model, best)
    return {"best_step": best["step"], "best_metrics": best.get("metrics", {"score": best["score"]}),
            "history": history, "train_clips": n, "text_head_config": asdict(cfg),
            "train_time_s": round(time.time() - start, 1)}


def _text_head_optimiser(model: ClapMini, cfg: TextHeadConfig) -> tuple[torch.optim.Optimizer, Any]:
    """Freeze everything but the text head and the temperature; AdamW with warm-up and cosine decay."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = [*model.text.parameters(), model.logit_scale]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    return opt, sched


def _restore_text(model: ClapMini, best: dict[str, Any]) -> None:
    """Load the best snapshot back and leave every parameter frozen (the model is for inference)."""
    model.text.load_state_dict(best["state"])
    with torch.no_grad():
        model.logit_scale.copy_(best["logit_scale"])
    for p in model.parameters():
        p.requires_grad_(False)


def _text_snapshot(model: ClapMini) -> dict[str, Any]:
    """A copy of what :func:`fit_text_head` trains: the text head's state and the temperature."""
    return {"state": {k: v.clone() for k, v in model.text.state_dict().items()},
            "logit_scale": model.logit_scale.detach().clone()}


def _text_head_loss(model: ClapMini, audio: torch.Tensor, cap_vecs: torch.Tensor, keys: torch.Tensor,
                    anchor: torch.Tensor | None, anchor_weight: float) -> torch.Tensor:
    """Symmetric InfoNCE of unit ``audio`` rows against the projected captions, plus the anchor.

    ``keys``: one id per distinct caption string (equal strings are joint positives);
    ``anchor``: the starting head's unit embedding of each caption, or None.
    """
    t = F.normalize(model.embed_text_vecs(cap_vecs), dim=-1)
    loss = info_nce(model.logit_scale.exp().clamp(max=100.0) * audio @ t.T, keys)
    if anchor is not None:
        loss = loss + anchor_weight * (1 - (t * anchor).sum(-1)).mean()
    return loss
