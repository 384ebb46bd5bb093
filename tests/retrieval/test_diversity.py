"""The one MMR gives exactly the orders of the two copies it replaced (ties included).

Plain search (``SearchService._diversify``) and generative search (``generative.mmr``) each had
their own MMR loop until they were unified in :mod:`retrieval.search.diversity`. The two loops
below are verbatim copies of those (frozen reference implementations): a published ranking
must not move when code is reorganised, so the new function has to match them bit for bit.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from retrieval.search.diversity import GroupCaps, mmr


def _old_generative_mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float,
                        window: int | None = None) -> np.ndarray:
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = vectors @ vectors.T
    max_sim = np.zeros(n)
    remaining = np.ones(n, bool)
    by_score = np.argsort(-scores, kind="stable")
    chosen: list[int] = []
    while len(chosen) < min(k, n):
        eligible = remaining.copy()
        if window is not None:
            eligible[:] = False
            eligible[by_score[remaining[by_score]][:window]] = True
        val = np.where(eligible, lam * scores - (1 - lam) * max_sim, -np.inf)
        j = int(np.argmax(val))
        chosen.append(j)
        remaining[j] = False
        max_sim = np.maximum(max_sim, sim[j])
    return np.asarray(chosen, np.int64)


def _old_service_mmr(ids: np.ndarray, scores: np.ndarray, vecs: np.ndarray, need: int,
                     lam: float, table: dict[int, object], caps: list[tuple[str, int]]
                     ) -> np.ndarray:
    counts: dict[tuple[str, str], int] = {}

    def allowed_by_caps(j: int) -> bool:
        meta = table.get(int(ids[j]))
        for f, cap in caps:
            v = getattr(meta, f, None) if meta else None
            if v is not None and counts.get((f, v), 0) >= cap:
                return False
        return True

    def take(j: int) -> None:
        meta = table.get(int(ids[j]))
        for f, _ in caps:
            v = getattr(meta, f, None) if meta else None
            if v is not None:
                counts[(f, v)] = counts.get((f, v), 0) + 1

    sim = vecs @ vecs.T
    max_sim = np.full(len(ids), -np.inf)
    remaining = np.ones(len(ids), bool)
    chosen = []
    while len(chosen) < need and remaining.any():
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        val = np.where(remaining, lam * scores - (1 - lam) * redundancy, -np.inf)
        j = int(np.argmax(val))
        remaining[j] = False
        if not allowed_by_caps(j):
            continue
        take(j)
        chosen.append(j)
        max_sim = np.maximum(max_sim, sim[j])
    return np.asarray(chosen, np.int64)


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and float32 scores; every other seed has duplicated rows and tied scores."""
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(1, 50)), int(rng.integers(2, 10))
    v = rng.standard_normal((n, d))
    if seed % 2:
        v[rng.integers(0, n, n // 2)] = v[0]
        v = np.round(v)  # coarse grid: tied (and negative) cosines
    v = (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)).astype(np.float32)
    s = rng.random(n).astype(np.float32)
    if seed % 2:
        s = np.round(s, 1).astype(np.float32)
    return v, s


@pytest.mark.parametrize("seed", range(0, 120, 3))
def test_mmr_matches_the_generative_copy(seed: int) -> None:
    v, s = _case(seed)
    n = len(s)
    for k, lam, window in itertools.product((1, 4, n, n + 2), (0.0, 0.5, 0.9, 1.0),
                                            (None, 1, 3, 10)):
        assert mmr(s, v, k, lam, window).tolist() == _old_generative_mmr(s, v, k, lam,
                                                                         window).tolist()


@pytest.mark.parametrize("seed", range(1, 120, 3))
def test_mmr_matches_the_search_service_copy(seed: int) -> None:
    v, s = _case(seed)
    n = len(s)
    ids = np.arange(100, 100 + n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 6))
    table = {int(i): SimpleNamespace(piece_id=f"p{i % groups}", artist=None if i % 4 == 0 else
                                     f"a{i % 3}") for i in ids if i % 9}  # some tracks unknown
    for need, lam, caps in itertools.product((1, 5, n + 1), (0.0, 0.3, 0.7, 1.0),
                                             ([], [("piece_id", 1)], [("piece_id", 2),
                                                                      ("artist", 1)])):
        got = mmr(s, v, need, lam, floor=None,
                  admit=GroupCaps(ids, table.get, caps).admit)
        want = _old_service_mmr(ids, s, v, need, lam, table, caps)
        assert got.tolist() == want.tolist(), (need, lam, caps)


def test_the_floor_is_what_tells_the_two_apart() -> None:
    """Opposite vectors: without a floor a negative cosine makes a candidate *more* novel."""
    v = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], np.float32)
    s = np.array([1.0, 0.5, 0.55], np.float32)
    assert mmr(s, v, 3, 0.5, floor=0.0).tolist() == [0, 2, 1]
    assert mmr(s, v, 3, 0.5, floor=None).tolist() == [0, 1, 2]
