"""Training the prior on (caption embedding, audio embedding) pairs, and its regression baseline.

The data are embeddings only (numpy, unit rows): embedding the catalog is the caller's job, so
this module trains a prior for any encoder. The noise schedule is diffusers' ``DDPMScheduler``
(:func:`retrieval.prior.schedulers.training_scheduler`), so every sampler built from its config
matches the weights.

Three things matter on catalogs of a few thousand pairs:

- condition dropout (``cond_dropout``) trains the unconditional prediction that classifier-free
  guidance subtracts;
- a share of the rows is conditioned on a *noisy copy of the target's own audio embedding*
  (``audio_cond_prob``) instead of a caption: that teaches the prior the example-track
  condition ("more like this track") from the same joint space, around the track rather than
  on it;
- an exponential moving average of the weights (``ema_decay``), evaluated on the validation
  pairs, picks the weights that are saved: small diffusion models are noisy step to step.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from retrieval.errors import RetrievalError
from retrieval.prior.model import PriorConfig, PriorDenoiser, RegressionMLP
from retrieval.prior.schedulers import training_scheduler

Progress = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Pairs:
    """Aligned condition/target embeddings: ``text[i]`` describes ``audio[i]``.

    Attributes:
        text: float32 ``[N, dim]`` unit rows (caption embeddings).
        audio: float32 ``[N, dim]`` unit rows (the matching tracks' audio embeddings).
    """

    text: np.ndarray
    audio: np.ndarray

    def __post_init__(self) -> None:
        if self.text.shape != self.audio.shape or self.text.ndim != 2:
            raise RetrievalError(f"pairs need equal [N, dim] arrays, got text {self.text.shape}"
                                 f" and audio {self.audio.shape}")

    def __len__(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of the prior (and of the regression baseline, which shares the loop shape).

    Attributes:
        steps: optimiser steps.
        batch_size: pairs per step.
        lr: peak AdamW learning rate (linear warm-up over 5 %, cosine decay).
        weight_decay: AdamW weight decay.
        cond_dropout: share of rows trained unconditionally (classifier-free guidance).
        audio_cond_prob: share of rows conditioned on a noisy copy of their own audio embedding.
        audio_cond_noise: norm of the Gaussian noise added to that copy (0.5 -> cosine ~0.9).
        ema_decay: decay of the weight average that is evaluated and saved.
        mean_weight: weight of the mean head's cosine loss (priors with ``mean_head``); the
            head sees the same conditions as the denoiser, dropped ones included, so
            ``mu(null)`` is the catalog's mean direction that guidance subtracts.
        eval_every: steps between validation passes.
        seed: all randomness (init, batches, noise).
    """

    steps: int = 4000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    cond_dropout: float = 0.1
    audio_cond_prob: float = 0.2
    audio_cond_noise: float = 0.5
    ema_decay: float = 0.995
    eval_every: int = 200
    seed: int = 0
    mean_weight: float = 1.0


def _lr_at(step: int, tc: TrainConfig) -> float:
    warm = max(1, tc.steps // 20)
    if step < warm:
        return tc.lr * (step + 1) / warm
    p = (step - warm) / max(1, tc.steps - warm)
    return tc.lr * 0.5 * (1 + math.cos(math.pi * p))


def _target(sched: Any, prediction_type: str, x0: torch.Tensor, noise: torch.Tensor,
            t: torch.Tensor) -> torch.Tensor:
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    return sched.get_velocity(x0, noise, t)


def diffusion_loss(model: PriorDenoiser, sched: Any, x0: torch.Tensor, cond: torch.Tensor,
                   drop: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the model's prediction at noise level ``t``.

    Args:
        model: the denoiser.
        sched: the training scheduler (:func:`~retrieval.prior.schedulers.training_scheduler`).
        x0: clean targets in data space ``[B, dim]`` (unit embeddings times ``config.scale``).
        cond: unit conditions ``[B, dim]``.
        drop: bool ``[B]``, rows made unconditional.
        noise: ``[B, dim]`` standard normal.
        t: int64 ``[B]`` training timesteps.
    """
    xt = sched.add_noise(x0, noise, t)
    pred = model(xt, t, cond, drop)
    return nn.functional.mse_loss(pred, _target(sched, model.config.prediction_type, x0, noise,
                                                t))


def mean_loss(model: PriorDenoiser, cond: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """``1 - cos(mu(c), audio)``, averaged: the mean head's loss (as the regression baseline's)."""
    return 1 - (model.predict_mean(cond) * audio).sum(-1).mean()


@torch.no_grad()
def validation_loss(model: PriorDenoiser, pairs: Pairs, seed: int = 123, repeats: int = 4,
                    mean_weight: float = 1.0) -> float:
    """Conditional loss on fixed noise and timesteps (comparable across evaluations).

    Plus the mean head's cosine loss, weighted by ``mean_weight``, when the prior has one. The
    noise comes from its own generator seeded ``seed``; ``repeats`` draws are averaged.
    """
    sched = training_scheduler(model.config)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.from_numpy(pairs.audio).float() * model.config.scale
    cond = torch.from_numpy(pairs.text).float()
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(repeats):
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, model.config.num_train_timesteps, (len(x0),), generator=g)
        drop = torch.zeros(len(x0), dtype=torch.bool)
        total += float(diffusion_loss(model, sched, x0, cond, drop, noise, t))
    total /= repeats
    if model.mean_net is not None:
        total += mean_weight * float(mean_loss(model, cond, torch.from_numpy(pairs.audio).float()))
    model.train(was_training)
    return total


def _draw_batch(text: torch.Tensor, audio: torch.Tensor, g: torch.Generator, tc: TrainConfig,
                num_train_timesteps: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training batch: which pairs, their conditions, dropout, noise and timesteps.

    Every random number of a step comes from ``g``, in a fixed order (pairs, audio-condition
    choice, its jitter when any row uses it, dropout, noise, timesteps): changing the order
    would change the weights ``train-prior`` reproduces.

    Args:
        text: unit caption embeddings ``[N, dim]``.
        audio: unit audio embeddings ``[N, dim]``.
        g: the training generator.
        tc: the batch size and the conditioning shares.
        num_train_timesteps: the range of ``t``.

    Returns:
        ``(audio [B, dim], cond [B, dim], drop bool [B], noise [B, dim], t int64 [B])``; a
        share ``tc.audio_cond_prob`` of ``cond`` rows are jittered unit copies of the audio.
    """
    n, d = text.shape
    idx = torch.randint(0, n, (min(tc.batch_size, n),), generator=g)
    a = audio[idx]
    cond = text[idx]
    use_audio = torch.rand(len(idx), generator=g) < tc.audio_cond_prob
    if use_audio.any():
        jitter = torch.randn(a.shape, generator=g) * (tc.audio_cond_noise / math.sqrt(d))
        noisy = nn.functional.normalize(a + jitter, dim=-1)
        cond = torch.where(use_audio[:, None], noisy, cond)
    drop = torch.rand(len(idx), generator=g) < tc.cond_dropout
    noise = torch.randn(a.shape, generator=g)
    t = torch.randint(0, num_train_timesteps, (len(idx),), generator=g)
    return a, cond, drop, noise, t


def train_prior(train: Pairs, val: Pairs | None = None, config: PriorConfig | None = None,
                tc: TrainConfig | None = None, progress: Progress | None = None
                ) -> tuple[PriorDenoiser, dict[str, Any]]:
    """Train a prior; returns the best EMA weights (by validation loss) and the history.

    Args:
        train: training pairs.
        val: validation pairs (default: the training loss picks the weights).
        config: the model shape; its ``dim`` must equal the embeddings'.
        tc: optimisation settings.
        progress: called as ``progress(step, metrics)`` after every step (``metrics`` carries
            ``loss`` and, at validation steps, ``val_loss``).
    """
    config = config or PriorConfig(dim=train.text.shape[1])
    tc = tc or TrainConfig()
    if config.dim != train.text.shape[1]:
        raise RetrievalError(f"config.dim {config.dim} != embedding dim {train.text.shape[1]}")
    torch.manual_seed(tc.seed)
    g = torch.Generator().manual_seed(tc.seed)
    model = PriorDenoiser(config).train()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    ema_params, model_params = list(ema.parameters()), list(model.parameters())
    sched = training_scheduler(config)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    text = torch.from_numpy(np.ascontiguousarray(train.text, np.float32))
    audio = torch.from_numpy(np.ascontiguousarray(train.audio, np.float32))
    best: tuple[float, dict[str, torch.Tensor] | None] = (math.inf, None)
    history: dict[str, Any] = {"loss": [], "val_loss": [], "best_step": 0}
    t0 = time.perf_counter()
    for step in range(tc.steps):
        a, cond, drop, noise, t = _draw_batch(text, audio, g, tc, config.num_train_timesteps)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, tc)
        loss = diffusion_loss(model, sched, a * config.scale, cond, drop, noise, t)
        if model.mean_net is not None:
            kept = torch.where(drop[:, None], model.null_cond[None, :].expand_as(cond), cond)
            loss = loss + tc.mean_weight * mean_loss(model, kept, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(tc.ema_decay, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, model_params, 1 - decay)
        metrics = {"loss": float(loss.detach())}
        if (step + 1) % tc.eval_every == 0 or step + 1 == tc.steps:
            score = (validation_loss(ema, val, mean_weight=tc.mean_weight) if val is not None
                     else float(np.mean(history["loss"][-tc.eval_every:] or [metrics["loss"]])))
            metrics["val_loss"] = score
            history["val_loss"].append((step + 1, score))
            if score < best[0]:
                best = (score, copy.deepcopy(ema.state_dict()))
                history["best_step"] = step + 1
        history["loss"].append(metrics["loss"])
        if progress is not None:
            progress(step + 1, metrics)
    if best[1] is not None:
        ema.load_state_dict(best[1])
    history["seconds"] = round(time.perf_counter() - t0, 1)
    history["best_val_loss"] = best[0]
    return ema, history


def save_prior(model: PriorDenoiser, path: str | Path, card: dict[str, Any]) -> Path:
    """Write ``path`` (safetensors) and ``path.with_suffix('.json')`` (the card + config)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    card = {**card, "config": model.config.to_dict(),
            "parameters": model.num_parameters()}
    path.with_suffix(".json").write_text(json.dumps(card, indent=1, default=_jsonable) + "\n")
    return path


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------- regression baseline


def train_regression(train: Pairs, val: Pairs | None = None, tc: TrainConfig | None = None,
                     progress: Progress | None = None) -> tuple[RegressionMLP, dict[str, Any]]:
    """Fit :class:`RegressionMLP` by cosine loss; keeps the weights with the best val cosine."""
    tc = tc or TrainConfig()
    torch.manual_seed(tc.seed)
    g = torch.Generator().manual_seed(tc.seed)
    model = RegressionMLP(train.text.shape[1]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    text = torch.from_numpy(np.ascontiguousarray(train.text, np.float32))
    audio = torch.from_numpy(np.ascontiguousarray(train.audio, np.float32))
    best: tuple[float, dict[str, torch.Tensor] | None] = (-math.inf, None)
    history: dict[str, Any] = {"val_cos": []}
    for step in range(tc.steps):
        idx = torch.randint(0, len(text), (min(tc.batch_size, len(text)),), generator=g)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, tc)
        loss = 1 - (model(text[idx]) * audio[idx]).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        metrics = {"loss": float(loss.detach())}
        if val is not None and ((step + 1) % tc.eval_every == 0 or step + 1 == tc.steps):
            cos = float((model.predict(val.text) * val.audio).sum(-1).mean())
            model.train()
            metrics["val_cos"] = cos
            history["val_cos"].append((step + 1, cos))
            if cos > best[0]:
                best = (cos, copy.deepcopy(model.state_dict()))
        if progress is not None:
            progress(step + 1, metrics)
    if best[1] is not None:
        model.load_state_dict(best[1])
    return model.eval(), history
