"""The prior's denoiser: a residual MLP over the encoder's audio-embedding space.

Why an MLP and not a transformer: the state is one 512-d vector, not a sequence, and the
budget is a few milliseconds for 8 seeds x ~15 steps on a shared CPU. Each block is
pre-norm with adaptive scale/shift (adaLN, as in DiT) from one embedding of (timestep,
condition): conditioning every block, not only the input, is what lets a small network follow
the condition at high noise levels.

The condition lives in the same joint space as the target (a text embedding, or an example
track's audio embedding); a learned ``null_cond`` vector stands for "no condition" and is what
condition dropout swaps in during training, so one network gives both the conditional and the
unconditional prediction that classifier-free guidance needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from retrieval.encoders.base import l2_normalize

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


@dataclass(frozen=True)
class PriorConfig:
    """Shape and diffusion parameterisation of a prior (saved in its model card).

    Attributes:
        dim: embedding dimension of the encoder (target and condition share it).
        width: hidden width of the residual blocks.
        depth: number of residual blocks.
        expansion: hidden multiplier inside a block's MLP.
        time_dim: size of the sinusoidal timestep features.
        dropout: dropout inside the blocks (the catalogs are small; the prior overfits).
        prediction_type: what the network predicts, in diffusers' terms (``epsilon``,
            ``sample`` = x0, ``v_prediction``).
        num_train_timesteps: length of the training noise schedule.
        beta_schedule: diffusers' name of the beta schedule.
        data_scale: unit embeddings are multiplied by this before noising so that each
            coordinate has a standard deviation near 1 (the schedulers assume it); ``0`` means
            ``sqrt(dim)``.
        mean_head: also learn a deterministic *conditional mean* ``mu(c)`` (a
            :class:`RegressionMLP` trained by cosine loss on the same batches). Why: the
            denoiser's own x0 estimate at pure noise is that mean in theory, but measured on
            validation it ranked broad queries ("early music", "church music") 0.08 nDCG worse
            than a regression MLP on the same data. With the head, a prior gives both the point
            that broad queries need and the samples whose spread says how broad the query is.
        mean_width / mean_depth: the head's shape (the regression baseline's by default).
    """

    dim: int = 512
    width: int = 192
    depth: int = 3
    expansion: int = 2
    time_dim: int = 128
    dropout: float = 0.1
    prediction_type: str = "sample"
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    data_scale: float = 0.0
    mean_head: bool = False
    mean_width: int = 256
    mean_depth: int = 2

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got "
                             f"{self.prediction_type!r}")
        for name in ("dim", "width", "depth", "expansion", "time_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def scale(self) -> float:
        """The factor between unit embeddings and the diffusion's data space."""
        return self.data_scale or math.sqrt(self.dim)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (the model card's ``config``, read back by ``PriorConfig(**d)``)."""
        return asdict(self)


def timestep_features(t: torch.Tensor, size: int) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps: ``[B] -> [B, size]``."""
    half = size // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResidualBlock(nn.Module):
    """``h + MLP(LN(h) * (1 + scale) + shift)`` with scale/shift from the (t, c) embedding."""

    def __init__(self, width: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, expansion * width), nn.SiLU(),
                                 nn.Dropout(dropout), nn.Linear(expansion * width, width))
        # Start as the identity: a deep residual stack trains faster from there.
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``h [G, K, width]``; ``emb [G, width]`` is shared by the K rows of a group."""
        scale, shift = self.modulation(emb)[:, None, :].chunk(2, dim=-1)
        # Training and scoring path: the arithmetic the committed priors were trained with
        # (:meth:`modulated` fuses it, which rounds differently in the last bit).
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)

    def modulated(self, h: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The block at sampling time, with its adaLN ``gain`` and ``shift`` already computed.

        ``gain = 1 + scale`` and ``shift`` broadcast to ``h`` ``[G, K, width]``. The MLP runs as two functional linear
        calls: the block sees a handful of rows and the per-module dispatch (dropout included,
        which is the identity in eval mode) costs as much as the arithmetic. Same function as
        :meth:`forward` in eval mode, to rounding.
        """
        x = torch.addcmul(shift, self.norm(h), gain)
        up, _, _, down = self.mlp  # Linear, SiLU, Dropout (identity at sampling time), Linear
        return h + nn.functional.linear(nn.functional.silu(nn.functional.linear(x, up.weight, up.bias)),
                                        down.weight, down.bias)


class PriorDenoiser(nn.Module):
    """Predicts noise, x0 or v for a noisy embedding given a timestep and a condition.

    Args:
        config: the shape; see :class:`PriorConfig`.
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        d, w = config.dim, config.width
        self.null_cond = nn.Parameter(torch.zeros(d))
        self.time_mlp = nn.Sequential(nn.Linear(config.time_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.cond_mlp = nn.Sequential(nn.Linear(d, w), nn.SiLU(), nn.Linear(w, w))
        self.inp = nn.Linear(d, w)
        self.cond_in = nn.Linear(d, w)
        self.blocks = nn.ModuleList(ResidualBlock(w, config.expansion, config.dropout)
                                    for _ in range(config.depth))
        self.out_norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, d)
        self.mean_net = (RegressionMLP(d, config.mean_width, config.mean_depth, config.dropout)
                         if config.mean_head else None)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """One prediction per row (training).

        Args:
            x: noisy embeddings in data space ``[B, dim]``.
            t: timesteps ``[B]`` (or a scalar tensor, broadcast).
            cond: unit condition embeddings ``[B, dim]``; ``None`` = unconditional for all.
            drop: bool ``[B]``, rows whose condition is replaced by the null condition.

        Returns:
            ``[B, dim]``, in the units of ``config.prediction_type``.
        """
        b = x.shape[0]
        if t.dim() == 0:
            t = t.expand(b)
        null = self.null_cond[None, :].expand(b, -1)
        if cond is None:
            cond = null
        elif drop is not None:
            cond = torch.where(drop[:, None], null, cond)
        return self.denoise(x[:, None, :], t, self.condition(cond))[:, 0, :]

    def condition(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The condition's contributions ``([G, width], [G, width])``: to the input and to the block embedding.

        ``cond``: unit conditions ``[G, dim]``. Computed once per query, not once per denoising step.
        """
        return self.cond_in(cond), self.cond_mlp(cond)

    def denoise(self, x: torch.Tensor, t: torch.Tensor,
                cond: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Predictions for ``x [G, K, dim]``: K rows share each of the G conditions.

        Why grouped: at sampling time the K seeds share each condition, so the adaLN
        modulation (two thirds of a block's weights) runs on G rows, not G*K.

        Args:
            x: noisy embeddings in data space ``[G, K, dim]``.
            t: one timestep (scalar tensor) or one per group ``[G]``.
            cond: :meth:`condition` of the G conditions.
        """
        cond_h, cond_e = cond
        t = t.reshape(-1)
        emb = nn.functional.silu(self.time_mlp(timestep_features(t, self.config.time_dim))
                                 + cond_e)
        h = self.inp(x) + cond_h[:, None, :]
        for block in self.blocks:
            h = block(h, emb)
        return self.out(self.out_norm(h))

    def schedule_modulations(self, timesteps: torch.Tensor, cond_e: torch.Tensor
                             ) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """Every block's adaLN ``(gain, shift)`` ``[G, 1, width]`` for each sampling step (``gain = 1 + scale``).

        Why: at sampling time the timesteps are known before the loop and the conditions do
        not change, so the time MLP and the blocks' modulation layers (5 of the 13 matrix
        products of a step) run once for the whole schedule, batched over its S steps,
        instead of once per step on a handful of rows; the loop then runs only the trunk
        (:meth:`denoise_modulated`). On this CPU a product's cost has a fixed part: a 192x384
        linear takes 8 us on 1 row, 13 us on 2 and 34 us on 16 (quiet machine, one thread),
        so one call over the S steps' rows beats S calls on 2 rows each.

        Args:
            timesteps: the schedule ``[S]``.
            cond_e: the block-embedding part of :meth:`condition` ``[G, width]``.

        Returns:
            ``S`` lists (one per step), each with one ``(gain, shift)`` per block.
        """
        temb = self.time_mlp(timestep_features(timesteps.reshape(-1), self.config.time_dim))
        emb = nn.functional.silu(temb[:, None, :] + cond_e[None, :, :])  # [S, G, width]
        per_block = []
        for block in self.blocks:
            scale, shift = block.modulation(emb)[:, :, None, :].chunk(2, dim=-1)
            per_block.append((1 + scale, shift))  # each [S, G, 1, w]
        return [[(gain[i], shift[i]) for gain, shift in per_block] for i in range(len(temb))]

    def denoise_modulated(self, x: torch.Tensor, cond_h: torch.Tensor,
                          modulations: list[tuple[torch.Tensor, torch.Tensor]],
                          coef: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`denoise` at one step of :meth:`schedule_modulations`, for the sampler.

        Args:
            x: the K noisy samples ``[K, dim]``, the same input for all G conditions (at
                sampling time every condition sees the same x_t, so the input projection runs
                on K rows, not G*K).
            cond_h: the input part of :meth:`condition` ``[G, width]``.
            modulations: one step of :meth:`schedule_modulations`.
            coef: guidance weights over the G conditions ``[G]``, summing to 1
                (:func:`retrieval.prior.pipeline.guidance_coefficients`). The output layer
                is affine, so combining before it is exact and it then runs on K rows.

        Returns:
            ``[G, K, dim]``, as :meth:`denoise` of ``x`` broadcast to every group; with
            ``coef``: the guided combination ``[K, dim]``.
        """
        h = self.inp(x)[None] + cond_h[:, None, :]
        for block, (gain, shift) in zip(self.blocks, modulations, strict=True):
            h = block.modulated(h, gain, shift)
        h = self.out_norm(h)
        if coef is not None:
            h = torch.tensordot(coef, h, dims=1)
        return self.out(h)

    def predict_mean(self, cond: torch.Tensor) -> torch.Tensor:
        """The conditional mean ``mu(c)`` of unit conditions ``[G, dim]`` (unit rows).

        Raises:
            RuntimeError: the prior was trained without a mean head.
        """
        if self.mean_net is None:
            raise RuntimeError("this prior has no mean head (PriorConfig.mean_head=False)")
        return self.mean_net(cond)

    def num_parameters(self) -> int:
        """The number of weights (reported on the model card)."""
        return sum(p.numel() for p in self.parameters())


class RegressionMLP(nn.Module):
    """Deterministic text (or track) embedding -> one predicted audio embedding ``[B, dim]``.

    Residual blocks without noise or timestep, trained with a cosine loss. Two uses: the
    regression baseline the evaluation compares the prior with, and the prior's own mean head
    (:attr:`PriorConfig.mean_head`).
    """

    def __init__(self, dim: int, width: int = 256, depth: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.SiLU(),
                          nn.Dropout(dropout), nn.Linear(2 * width, width))
            for _ in range(depth))
        self.out = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit predicted audio embeddings ``[B, dim]`` from conditions ``x`` ``[B, dim]``."""
        h = self.inp(x)
        for b in self.blocks:
            h = h + b(h)
        # A residual on the input: the text embedding is already a fair guess of the target.
        return nn.functional.normalize(self.out(h) + x, dim=-1)

    @torch.no_grad()
    def predict(self, text: np.ndarray) -> np.ndarray:
        """Unit ``[N, dim]`` predictions for unit text embeddings ``[N, dim]``."""
        self.eval()
        return l2_normalize(self(torch.from_numpy(np.asarray(text, np.float32))).numpy())
