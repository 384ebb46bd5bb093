"""A tiny deterministic encoder for tests: the ``Encoder`` protocol without a model.

Text: signed feature hashing of lower-cased words (plus a shared bias, so any two texts are a
little alike). Audio: a few spectral statistics (band energies, RMS, zero crossings) through a
fixed random projection. Both L2-normalised float32, like every real encoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from retrieval.encoders.base import l2_normalize


class TinyEncoder:
    """Hashed bag of words / projected spectral statistics, ``dim`` wide."""

    def __init__(self, dim: int = 32, sample_rate: int = 16_000) -> None:
        self.dim = dim
        self.sample_rate = sample_rate
        self.id = f"tiny-test@{dim}"
        self._proj = np.random.default_rng(7).standard_normal((18, dim)).astype(np.float32)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            out[i, 0] = 0.3
            for w in t.lower().split():
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[i, 1 + h % (self.dim - 1)] += 1.0 if (h >> 40) & 1 else -1.0
        return l2_normalize(out)

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        feats = np.zeros((len(waveforms), 18), np.float32)
        for i, w in enumerate(waveforms):
            w = np.asarray(w, np.float32).reshape(-1)[: self.sample_rate * 30]
            spec = np.abs(np.fft.rfft(w, n=4096)) if w.size else np.zeros(2049)
            edges = np.geomspace(1, len(spec), 17).astype(int)
            bands = np.array([spec[a:max(b, a + 1)].sum() for a, b in zip(edges[:-1], edges[1:],
                                                                          strict=True)])
            feats[i, :16] = np.log1p(bands) - np.log1p(bands).mean()
            feats[i, 16] = np.sqrt(np.mean(w ** 2)) if w.size else 0.0
            feats[i, 17] = np.mean(np.abs(np.diff(np.sign(w)))) if w.size > 1 else 0.0
        return l2_normalize(feats @ self._proj)
