"""Diffusion prior latency: sampling K = 1, 8, 32 seeds, and generative (adaptive and likelihood
fusion) vs. plain search.

``python -m benchmarks.bench_prior [--repeats N] [--threads T]``

Uses the prior trained for the default encoder and the catalog embeddings cached by
``tunescope train-prior`` (``var/prior-data/<encoder id>.npz``) when they exist; otherwise a
randomly initialised prior of the default shape over random unit vectors (the latency does not
depend on the weights). Both wall-clock and process CPU time are reported: on a shared CPU the
wall clock measures the neighbours as much as the code. Variants are timed round-robin (one
call of each per round), and what generative search adds to plain search is the median of the
per-round differences, so the machine's drift during a run cancels out of the comparisons.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

QUERIES = ["Irish music", "a slow air on the fiddle", "sacred choral music", "a fast reel",
           "music for strings", "a jig on the tin whistle", "a dance tune", "solo piano"]


def _time_interleaved(fns: dict[str, Callable[[], object]], repeats: int
                      ) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """Time several variants round-robin: one call of each per round, ``repeats`` rounds.

    Why: this machine's speed drifts by a factor of ~1.5 within minutes (shared host); timed one
    after the other in blocks, two variants doing the same work were measured 22 and 32 ms in
    one run. Interleaved, every variant sees the same drift, and the per-round differences
    (:func:`_paired_ms`) compare them within one round.

    Returns:
        (stats per variant, the raw wall times per variant in round order).
    """
    for fn in fns.values():
        fn()  # warm-up
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append((time.perf_counter() - w) * 1000)
            cpu[name].append((time.process_time() - c) * 1000)
    stats = {k: {"wall_ms_median": round(statistics.median(wall[k]), 2),
                 "wall_ms_p90": round(float(np.percentile(wall[k], 90)), 2),
                 "cpu_ms_median": round(statistics.median(cpu[k]), 2)} for k in fns}
    return stats, wall


def _paired_ms(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a - b`` (ms): what variant a adds to b, drift cancelled."""
    return round(float(np.median(np.asarray(a) - np.asarray(b))), 2)


def _load(home: Path):  # noqa: ANN202 - (encoder or None, prior, audio or None)
    from retrieval.prior import prior_weights_path
    from retrieval.prior.data import cache_path
    from retrieval.prior.model import PriorConfig, PriorDenoiser
    from retrieval.prior.pipeline import PriorPipeline

    try:
        from retrieval.encoders import load_encoder

        enc = load_encoder("default", device="cpu")
        path = prior_weights_path(enc.id)
        if path.is_file():
            cache = cache_path(home / "prior-data", enc.id)
            audio = np.load(cache)["audio"] if cache.is_file() else None
            return enc, PriorPipeline.from_pretrained(path), audio
    except Exception as e:  # noqa: BLE001 - fall back to a random prior, say why
        print(f"  (no trained prior: {type(e).__name__}: {e}; using a random one)")
        enc = None
    return enc, PriorPipeline(PriorDenoiser(PriorConfig())), None


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(prog="bench_prior")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=0,
                   help="torch and BLAS threads (0: leave as is; the server uses 1)")
    p.add_argument("--home", type=Path, default=Path("var"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_prior.json"))
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads, user_api="blas")  # as `tunescope serve` does
    enc, prior, audio = _load(args.home)
    cfg = prior.config
    print(f"prior: {prior.model.num_parameters():,} params, width {cfg.width}, depth "
          f"{cfg.depth}, {prior.scheduler_name} {prior.num_inference_steps} steps, "
          f"{torch.get_num_threads()} torch threads")
    rng = np.random.default_rng(0)
    cond = rng.standard_normal((2, cfg.dim)).astype(np.float32)
    results: dict[str, object] = {"params": prior.model.num_parameters(),
                                  "scheduler": prior.scheduler_name,
                                  "steps": prior.num_inference_steps,
                                  "threads": torch.get_num_threads(), "sampling": {}}
    sampling = {f"K={k}" + (" +negative" if neg else ""):
                (lambda k=k, neg=neg: prior.sample(cond[0], cond[1] if neg else None, num_samples=k))
                for k in (1, 8, 32) for neg in (False, True)}
    # The previous default step count, in the same rounds: the saving of 8 steps as a ratio.
    sampling["K=8 10 steps"] = lambda: prior.sample(cond[0], num_samples=8, num_inference_steps=10)
    stats, wall = _time_interleaved(sampling, args.repeats)
    results["sampling"] = stats
    for name, r in stats.items():
        print(f"  sample {name:16s} wall {r['wall_ms_median']:7.2f} ms (p90 "
              f"{r['wall_ms_p90']:.2f})  cpu {r['cpu_ms_median']:7.2f} ms")
    ratio = float(np.median(np.asarray(wall["K=8"]) / np.asarray(wall["K=8 10 steps"])))
    results["sampling K=8 default / 10 steps"] = round(ratio, 3)
    print(f"  sample K=8, {prior.num_inference_steps} steps / 10 steps: {ratio:.2f}x (median of per-round ratios)")
    if enc is not None and audio is not None:
        results["search"] = _search_bench(enc, prior, audio, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def _search_bench(enc, prior, audio: np.ndarray, repeats: int) -> dict[str, object]:  # noqa: ANN001
    from index.vectors import IndexConfig, VectorIndex
    from retrieval.search import SearchConfig, SearchOptions, SearchService, TrackMeta, TrackTable
    from retrieval.search.generative import GenerativeConfig, generative_search

    ids = np.arange(1, len(audio) + 1, dtype=np.int64)
    # One FAISS thread per request, as `create_app` configures the served index.
    index = VectorIndex.build(enc.id, ids, audio, factory="Flat", config=IndexConfig(threads=1))
    table = TrackTable(TrackMeta(id=int(i)) for i in ids)
    # The service caches text embeddings; the benchmark cycles over a few queries, so the
    # cached service measures the search paths alone and the uncached one adds a MiniLM call
    # per text, as a first-time query pays.
    services = {"cached text": SearchService(enc, index, table),
                "uncached text": SearchService(enc, index, table,
                                               SearchConfig(text_cache_size=0))}
    qi = iter(range(10**9))
    out: dict[str, object] = {"tracks": len(audio)}
    services["cached text"].embed_texts([*QUERIES, "fiddle"])  # every text already seen
    for label, service in services.items():

        def plain(service: SearchService = service) -> None:
            service.search_text(QUERIES[next(qi) % len(QUERIES)], SearchOptions(k=10))

        def plain_mmr(service: SearchService = service) -> None:
            service.search_text(QUERIES[next(qi) % len(QUERIES)],
                                SearchOptions(k=10, mmr_lambda=0.8))

        def gen_with(config: GenerativeConfig, negatives: tuple[str, ...] = (),
                     service: SearchService = service):  # noqa: ANN202 - a timed callable
            def run() -> None:
                generative_search(service, prior, [QUERIES[next(qi) % len(QUERIES)]], negatives,
                                  options=SearchOptions(k=10), config=config)
            return run

        gen = gen_with(GenerativeConfig(seeds=8))
        gen_z = gen_with(GenerativeConfig(seeds=8, combine="z"))
        gen_10 = gen_with(GenerativeConfig(seeds=8, steps=10))
        gen_neg = gen_with(GenerativeConfig(seeds=8), ("fiddle",))
        gen_lik = gen_with(GenerativeConfig(seeds=8, fusion="likelihood"))

        variants = {"plain text search": plain, "plain + MMR": plain_mmr, "generative K=8": gen,
                    "generative K=8 10 steps": gen_10, "generative K=8 z-scores": gen_z,
                    "generative K=8 +negative": gen_neg}
        stats, wall = _time_interleaved(variants, repeats)
        lik, _ = _time_interleaved({"likelihood": gen_lik}, max(3, repeats // 4))  # ~15x slower
        stats["generative K=8 likelihood"] = lik["likelihood"]
        for name, r in stats.items():
            out[f"{name} ({label})"] = r
            print(f"  {name:26s} {label:13s} wall {r['wall_ms_median']:7.2f} ms (p90 "
                  f"{r['wall_ms_p90']:.2f})  cpu {r['cpu_ms_median']:7.2f} ms   "
                  f"({len(audio)} tracks, k=10)")
        added = _paired_ms(wall["generative K=8"], wall["plain text search"])
        added_10 = _paired_ms(wall["generative K=8 10 steps"], wall["plain text search"])
        out[f"generative K=8 adds ms ({label})"] = added
        out[f"generative K=8 10 steps adds ms ({label})"] = added_10
        print(f"  generative K=8 adds {added:.2f} ms over plain search ({label}; median of per-round "
              f"differences); with 10 steps {added_10:.2f} ms ({added / added_10:.2f}x)")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
