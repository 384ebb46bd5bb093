"""Vector index benchmark: recall@10 vs exact, QPS, build time and memory per vector.

Data: unit vectors drawn from a mixture of many von Mises-Fisher-like clusters whose centres
span a low-dimensional subspace, plus isotropic jitter -- real embeddings are anisotropic and
clustered, and uniform random vectors are a degenerate worst case for any ANN index (they are
reported only as such, with ``--uniform``).

Contenders, in one run on the same data and queries: exact FAISS ``Flat``, FAISS ``HNSW32``
(efSearch sweep), ``IVF,Flat`` and ``IVF,PQ`` (nprobe sweep), hnswlib, and numpy brute force.

Usage::

    python -m benchmarks.bench_index            # 100k and 1M, ~12 min on 2 vCPU
    python -m benchmarks.bench_index --quick    # 20k, < 1 min
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

DIM = 512
K = 10
OUT = Path(__file__).resolve().parent / "results"


def _mixture(dim: int, clusters: int, rank: int, seed: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(basis [dim, rank], unit centres [clusters, dim], weights [clusters]) of one mixture."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0].astype(np.float32)
    centres = rng.standard_normal((clusters, rank)).astype(np.float32) @ basis.T
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(clusters, 2.0))  # clusters of unequal size, as in catalogs
    return basis, centres, weights


def clustered_vectors(n: int, dim: int = DIM, clusters: int = 2000, rank: int = 64,
                      spread: float = 0.55, seed: int = 0, draw_seed: int | None = None,
                      chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors from a vMF-like mixture: centre in a rank-``rank`` subspace + jitter.

    ``spread`` is the norm of the within-cluster noise relative to the centre; 0.55 puts a
    point's cosine to its centre near 0.85, in the range trained audio/text encoders show.
    ``seed`` fixes the mixture, ``draw_seed`` the points: queries are fresh points of the
    catalog's mixture, landing near its clusters the way real queries do.
    """
    basis, centres, weights = _mixture(dim, clusters, rank, seed)
    rng = np.random.default_rng(seed + 1 if draw_seed is None else draw_seed)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        c = centres[rng.choice(clusters, m, p=weights)]
        low = rng.standard_normal((m, rank)).astype(np.float32) @ basis.T / math.sqrt(rank)
        iso = rng.standard_normal((m, dim)).astype(np.float32) / math.sqrt(dim)
        x = c + spread * (0.8 * low + 0.6 * iso)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def uniform_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth,
                                                                               strict=True))
    return hits / (k * len(truth))


def timed_single(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray,
                 budget_s: float = 6.0) -> tuple[float, np.ndarray]:
    """Queries per second one query at a time (stops after ``budget_s``) and the results."""
    found = []
    t0 = time.perf_counter()
    for q in queries:
        found.append(search(q[None, :])[0])
        if time.perf_counter() - t0 > budget_s and len(found) >= 20:
            break
    dt = time.perf_counter() - t0
    return len(found) / dt, np.stack(found)


def timed_batch(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray,
                batch: int = 1000) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    found = np.concatenate([search(queries[s:s + batch]) for s in range(0, len(queries), batch)])
    return len(queries) / (time.perf_counter() - t0), found


def index_bytes(index: faiss.Index) -> int:
    return int(faiss.serialize_index(index).nbytes)


def bench_size(n: int, n_queries: int, uniform: bool, with_hnswlib: bool) -> list[dict]:
    """Every contender on ``n`` vectors; returns one row per (method, setting)."""
    gen = uniform_vectors if uniform else clustered_vectors
    t0 = time.perf_counter()
    x = gen(n, seed=0)
    q = uniform_vectors(n_queries, seed=1) if uniform else \
        clustered_vectors(n_queries, draw_seed=12345)
    print(f"[{n:,}] data {time.perf_counter() - t0:.1f}s", flush=True)
    rows: list[dict] = []

    def row(method: str, setting: str, recall: float, qps1: float, qpsb: float,
            build_s: float, bytes_per_vec: float) -> None:
        r = dict(n=n, method=method, setting=setting, recall10=round(recall, 4),
                 qps_single=round(qps1, 1), qps_batch=round(qpsb, 1), build_s=round(build_s, 1),
                 bytes_per_vector=round(bytes_per_vec, 1))
        rows.append(r)
        print(json.dumps(r), flush=True)

    # Exact: FAISS Flat is the ground truth.
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    build = time.perf_counter() - t0
    qpsb, truth = timed_batch(lambda b: flat.search(b, K)[1], q)
    qps1, found = timed_single(lambda b: flat.search(b, K)[1], q, budget_s=8.0)
    row("faiss Flat (exact)", "-", recall_at_k(found, truth[:len(found)]), qps1, qpsb, build,
        4 * DIM)

    # numpy brute force: the baseline anyone would write first.
    def np_search(b: np.ndarray) -> np.ndarray:
        s = b @ x.T
        top = np.argpartition(-s, K, axis=1)[:, :K]
        return np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1), 1)

    qps1, found = timed_single(np_search, q, budget_s=6.0)
    qpsb, found_b = timed_batch(np_search, q[:min(len(q), 500)], batch=100)
    row("numpy brute force", "-", recall_at_k(found, truth[:len(found)]), qps1, qpsb, 0, 4 * DIM)
    flat = None
    gc.collect()

    # HNSW32: the size rule's choice from 50k to 5M.
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(x)
    build = time.perf_counter() - t0
    mem = index_bytes(hnsw) / n
    for ef in (32, 64, 128, 256):
        hnsw.hnsw.efSearch = ef
        qps1, found = timed_single(lambda b: hnsw.search(b, K)[1], q)
        qpsb, found_b = timed_batch(lambda b: hnsw.search(b, K)[1], q)
        row("faiss HNSW32", f"efSearch={ef}", recall_at_k(found_b, truth), qps1, qpsb, build, mem)
    hnsw = None
    gc.collect()

    # IVF: nlist ~ sqrt(n), trained on a sample.
    nlist = 1 << int(round(math.log2(math.sqrt(n))))
    # PQ64np: 64 bytes per vector (np = no polysemous training, which costs minutes and only
    # helps Hamming-filtered search); SQ8: 1 byte per dimension, near-exact distances.
    for factory, probes in ((f"IVF{nlist},Flat", (8, 32, 64)),
                            (f"IVF{nlist},SQ8", (32, 64)),
                            (f"IVF{nlist},PQ64np", (32, 64))):
        t0 = time.perf_counter()
        ivf = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
        sample = x[np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)]
        ivf.train(sample)
        ivf.add(x)
        build = time.perf_counter() - t0
        mem = index_bytes(ivf) / n
        for nprobe in probes:
            faiss.extract_index_ivf(ivf).nprobe = nprobe
            qps1, found = timed_single(lambda b, ix=ivf: ix.search(b, K)[1], q)
            qpsb, found_b = timed_batch(lambda b, ix=ivf: ix.search(b, K)[1], q)
            row(f"faiss {factory}", f"nprobe={nprobe}", recall_at_k(found_b, truth), qps1,
                qpsb, build, mem)
        ivf = None
        gc.collect()

    if with_hnswlib:
        try:
            import hnswlib
        except ImportError:
            print("hnswlib not installed: pip install hnswlib (dev extra)")
        else:
            t0 = time.perf_counter()
            h = hnswlib.Index(space="ip", dim=DIM)
            h.init_index(max_elements=n, M=16, ef_construction=80)
            h.set_num_threads(os.cpu_count() or 1)
            h.add_items(x, np.arange(n))
            build = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as d:
                h.save_index(f"{d}/h.bin")
                mem = os.path.getsize(f"{d}/h.bin") / n
            for ef in (64, 128, 256):
                h.set_ef(ef)
                qps1, found = timed_single(lambda b: h.knn_query(b, k=K)[0], q)
                qpsb, found_b = timed_batch(lambda b: h.knn_query(b, k=K)[0], q)
                row("hnswlib M=16", f"ef={ef}", recall_at_k(found_b, truth), qps1, qpsb, build,
                    mem)
            h = None
    x = None
    gc.collect()
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| n | method | setting | recall@10 | QPS (1 at a time) | QPS (batch 1000) "
             "| build s | bytes/vector |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['method']} | {r['setting']} | {r['recall10']:.3f} | "
                     f"{r['qps_single']:,.0f} | {r['qps_batch']:,.0f} | {r['build_s']} | "
                     f"{r['bytes_per_vector']:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the index benchmark; writes ``benchmarks/results/bench_index*.json`` and a table."""
    p = argparse.ArgumentParser(prog="bench_index", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="20k vectors only (smoke run)")
    p.add_argument("--sizes", type=int, nargs="*", help="override the catalog sizes")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--uniform", action="store_true", help="degenerate uniform vectors")
    p.add_argument("--no-hnswlib", action="store_true")
    args = p.parse_args(argv if argv is not None else [])
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
    t0 = time.perf_counter()
    rows = []
    for n in sizes:
        rows += bench_size(n, args.queries if not args.quick else 200, args.uniform,
                           not args.no_hnswlib)
    OUT.mkdir(exist_ok=True)
    name = "bench_index" + ("_quick" if args.quick else "") + ("_uniform" if args.uniform else "")
    (OUT / f"{name}.json").write_text(json.dumps(
        dict(rows=rows, threads=faiss.omp_get_max_threads(), faiss=faiss.__version__,
             total_s=round(time.perf_counter() - t0, 1)), indent=1))
    print(markdown(rows))
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
