"""The one interface every text-audio encoder implements.

Numpy at the boundary: encoders take and return numpy arrays, so ``index/`` never imports
torch. Every vector is float32 and L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """A contrastive text-audio encoder.

    Attributes:
        id: names the exact weights (e.g. ``clap-mini@3f2a9c1d``); embeddings stored under one id
            are only comparable with queries embedded by the same id.
        dim: embedding dimension.
        sample_rate: the rate ``embed_audio`` expects its mono float32 waveforms at.
    """

    id: str
    dim: int
    sample_rate: int

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries or captions. Returns float32 ``[len(texts), dim]``, unit rows."""
        ...

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Embed whole mono waveforms at ``sample_rate`` (any length: windows are pooled).

        Returns float32 ``[len(waveforms), dim]``, unit rows.
        """
        ...


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-normalise to unit length in float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, eps)).astype(np.float32)
