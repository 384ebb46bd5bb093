"""Relative attributes as directions in the embedding space, learned from the catalog.

A direction is the difference of class means, ``normalize(mean(high) - mean(low))``, over the
catalog's own audio embeddings: fast minus slow, major minus minor, busy minus sparse, high
minus low register. Adding ``w * d`` to a query moves it toward "faster" without a filter, so
it reorders *within* what the hard bounds allow. :func:`separation` measures each one (AUC of
the projection on tracks it was not fitted on), and the evaluation reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retrieval.conversation.catalog import CatalogFacts
from retrieval.encoders.base import l2_normalize

#: Which learned direction each relative attribute of a critique moves along.
ATTRIBUTE_AXIS = {"tempo": "tempo", "energy": "tempo", "mood": "mood",
                  "brightness": "register", "density": "density", "register": "register"}


def _classes(cf: CatalogFacts) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Masks ``(high, low)`` per axis over ``cf.ids``."""
    with np.errstate(invalid="ignore"):
        return {"tempo": (cf.tempo >= 120, cf.tempo < 80),
                "mood": (cf.mode == "major", cf.mode == "minor"),
                "density": (cf.density >= 2, cf.density < 2),
                "register": (cf.register >= 0.5, cf.register <= -0.1)}


@dataclass
class AttributeDirections:
    """Unit directions ``[dim]`` per axis (tempo, mood, density, register); missing when a class is empty."""

    vectors: dict[str, np.ndarray]

    @classmethod
    def fit(cls, cf: CatalogFacts, vectors: Callable[[np.ndarray], np.ndarray],
            use: np.ndarray | None = None) -> AttributeDirections:
        """Directions from the catalog; ``use``: a boolean mask of ``cf.ids`` to fit on."""
        use = np.ones(len(cf.ids), bool) if use is None else use
        out: dict[str, np.ndarray] = {}
        if len(cf.ids) == 0:
            return cls(out)
        v = vectors(cf.ids)
        for axis, (high, low) in _classes(cf).items():
            hi, lo = high & use, low & use
            if hi.sum() >= 2 and lo.sum() >= 2:
                d = v[hi].mean(0) - v[lo].mean(0)
                if np.linalg.norm(d) > 1e-6:
                    out[axis] = l2_normalize(d[None, :].astype(np.float32))[0]
        return cls(out)

    def steer(self, query: np.ndarray, weights: dict[str, float], scale: float) -> np.ndarray:
        """``normalize(q + scale * sum(w_a d_a))`` over the critique's relative attributes."""
        move = np.zeros_like(query)
        for attr, w in weights.items():
            d = self.vectors.get(ATTRIBUTE_AXIS.get(attr, attr))
            if d is not None:
                move += w * d
        if not move.any():
            return query
        return l2_normalize((query + scale * move)[None, :])[0]


def separation(directions: AttributeDirections, cf: CatalogFacts,
               vectors: Callable[[np.ndarray], np.ndarray], held_out: np.ndarray
               ) -> dict[str, float]:
    """AUC of each direction's projection, high vs low class, on the ``held_out`` tracks.

    0.5 means the direction knows nothing about the attribute, 1.0 that it orders every pair.
    """
    v = vectors(cf.ids)
    out: dict[str, float] = {}
    for axis, (high, low) in _classes(cf).items():
        d = directions.vectors.get(axis)
        hi, lo = high & held_out, low & held_out
        if d is None or not hi.any() or not lo.any():
            continue
        p_hi, p_lo = v[hi] @ d, v[lo] @ d
        wins = (p_hi[:, None] > p_lo[None, :]).mean() + 0.5 * (p_hi[:, None] == p_lo[None, :]).mean()
        out[axis] = round(float(wins), 4)
    return out
