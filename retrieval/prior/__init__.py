"""The diffusion prior (after Diff4Steer): text or example tracks -> plausible audio embeddings.

A text query names a region of the audio-embedding space, not a point. The prior samples that
region: K seeds give K target embeddings, each a direction to search, and classifier-free
guidance steers them toward positive prompts or example tracks and away from negative ones.

- :mod:`retrieval.prior.model`: the denoiser (residual MLP, timestep + condition embedding).
- :mod:`retrieval.prior.pipeline`: the sampling loop, any diffusers scheduler, guidance.
- :mod:`retrieval.prior.training`: training on (caption, audio) embedding pairs; the regression
  baseline; saving weights + model card.

This ``__init__`` imports no torch: code that only needs to know where a prior lives (the API
deciding whether generative search is available) stays cheap.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"


def prior_weights_path(encoder_id: str, weights_dir: str | Path | None = None) -> Path:
    """Where the prior trained for ``encoder_id`` lives: one prior per encoder id.

    ``clap-mini@3f2a9c1d`` -> ``<weights_dir>/prior-clap-mini_3f2a9c1d.safetensors``; the model
    card is the same path with ``.json``.
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id.replace("@", "_"))
    return Path(weights_dir or WEIGHTS_DIR) / f"prior-{safe}.safetensors"


__all__ = ["WEIGHTS_DIR", "prior_weights_path"]
