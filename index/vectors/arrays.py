"""Array conventions at the FAISS boundary: ids are int64 rows, vectors float32 ``[n, dim]``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from index.errors import CatalogError


def as_ids(ids: npt.ArrayLike) -> np.ndarray:
    """Ids as the contiguous int64 ``[n]`` array FAISS takes."""
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def as_vectors(x: npt.ArrayLike, dim: int) -> np.ndarray:
    """Vectors as contiguous float32 ``[n, dim]`` (one vector may come as ``[dim]``).

    Raises:
        CatalogError: the shape does not match the index dimension.
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != dim:
        raise CatalogError(f"vectors of shape {x.shape} do not match the index dimension {dim}")
    return x


def empty_result(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's answer when nothing is found: scores ``-inf`` and ids ``-1``, both ``[q, k]``."""
    return np.full((q, k), -np.inf, np.float32), np.full((q, k), -1, np.int64)
