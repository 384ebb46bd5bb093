"""The factory rule and device choice: how an index is built when nobody says otherwise.

Also the helpers that tell which structure a factory string produced (HNSW, IVF, flat storage),
since tuning parameters and capabilities follow from it.

Kept apart from the FAISS wrapper because this is the one tuning surface an operator reads
(``IndexConfig`` fields map to settings and CLI flags), and the rule must stay readable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss

from index.errors import CatalogError


@dataclass(frozen=True)
class IndexConfig:
    """How to build and query an index.

    Attributes:
        factory: a FAISS factory string without the ``IDMap2`` prefix (``"Flat"``, ``"HNSW32"``,
            ``"IVF1024,Flat"``, ``"IVF4096,PQ64"``...); ``None`` chooses by catalog size.
        device: ``"auto"`` (GPU when faiss-gpu and a CUDA device exist), ``"cpu"`` or ``"cuda"``.
        ef_search: HNSW beam width at query time (recall vs speed).
        ef_construction: HNSW beam width at build time.
        nprobe: IVF lists visited per query.
        threads: FAISS OpenMP threads (0 keeps the library default).
    """

    factory: str | None = None
    device: str = "auto"
    ef_search: int = 128
    ef_construction: int = 80
    nprobe: int = 64
    threads: int = 0




def choose_factory(n: int, dim: int) -> str:
    """The factory string for a catalog of ``n`` vectors when none is configured.

    The rule, readable on purpose:

    - below 50,000 vectors: ``Flat`` -- exact, and an exact scan of 50k x 512 floats still
      answers in a few milliseconds, so approximation buys nothing;
    - up to 5 million: ``HNSW32`` -- the best recall/speed trade-off on a CPU (recall@10 >= 0.95
      at >10x the speed of exact search on 1M vectors, see ``benchmarks/RESULTS.md``), at
      ~256 extra bytes per vector;
    - above: ``IVF{4*sqrt(n)},SQ8`` -- HNSW's full-precision vectors no longer fit
      comfortably in memory; 8-bit scalar quantisation keeps one byte per dimension at
      near-exact distances (PQ at ``dim/8`` bytes costs too much recall on 512-d embeddings:
      ~0.75 recall@10 in the benchmark). Configure ``IVF...,PQ...np`` when memory rules.

    Args:
        n: number of vectors the index will hold.
        dim: their dimension.
    """
    if n < 50_000:
        return "Flat"
    if n <= 5_000_000:
        return "HNSW32"
    nlist = 1 << int(round(math.log2(4 * math.sqrt(n))))
    return f"IVF{nlist},SQ8"


def gpu_available(device: str) -> bool:
    """Whether searches should go to a GPU for this ``IndexConfig.device``.

    ``"auto"`` quietly falls back to the CPU (the CPU wheel has no GPU support at all), while an
    explicit ``"cuda"`` fails loudly: asking for a GPU and silently getting a CPU hides a
    deployment mistake behind 10x slower searches.

    Raises:
        CatalogError: ``device == "cuda"`` and FAISS sees no GPU.
    """
    if device == "cpu":
        return False
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "cuda" and n == 0:
        raise CatalogError("device='cuda' was asked for, but FAISS sees no GPU (install faiss-gpu)")
    return n > 0


# ---------------------------------------------------------------------- what a factory built

def hnsw_of(index: faiss.Index) -> faiss.IndexHNSW | None:
    """The HNSW index itself, when ``index`` is one (HNSW cannot delete, and has ``efSearch``)."""
    index = faiss.downcast_index(index)
    return index if isinstance(index, faiss.IndexHNSW) else None


def ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    """The IVF layer inside ``index``, if any (it needs training, ``nprobe``, a direct map)."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def flat_storage(index: faiss.Index) -> faiss.IndexFlat | None:
    """The full-precision vector array behind Flat and HNSW,Flat indexes, if any."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlat):
        return index
    if isinstance(index, faiss.IndexHNSW):
        storage = faiss.downcast_index(index.storage)
        if isinstance(storage, faiss.IndexFlat):
            return storage
    return None
