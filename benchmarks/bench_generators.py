"""Real generator backends on tiny random checkpoints: the cost of the plumbing, not of models.

What this measures is everything around the networks -- loading through ``from_pretrained``,
tokenising, the pipelines' Python loops, per-candidate generators, mono conversion -- with
networks 8-32 wide. It says nothing about the speed of the released checkpoints (see
docs/generators.md for those); it does show that the wrapper adds no cost worth naming.

``--rerank`` measures the aggregation rules of :mod:`generation.generators.rerank` on synthetic
priors: how often each rule ranks on-mode candidates above a between-modes blend (two-mode
prior), and how often a stray prior sample lets an off-target candidate win (one-mode prior with
one outlier).

Run: ``python -m benchmarks.bench_generators [--candidates 4] [--repeats 3] [--rerank]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# backend -> (tiny builder, seconds per candidate, options)
CASES = {
    "musicgen": ("save_musicgen", 1.0, {}),
    "audioldm2": ("save_audioldm2", 1.0, {"num_inference_steps": 10}),
    "stable-audio": ("save_stable_audio", 0.3, {"num_inference_steps": 10}),
}


def bench_backends(n: int, repeats: int) -> None:
    import torch

    from generation.generators import GenerationRequest, load_generator
    from tests.generation.generators import tiny

    torch.set_num_threads(1)
    print(f"{'backend':14} {'load s':>7} {'s/candidate':>12} {'audio s/s':>10}  (tiny random "
          f"checkpoints, {n} candidates, best of {repeats}, 1 thread: plumbing cost only)")
    for name, (builder, seconds, opts) in CASES.items():
        with tempfile.TemporaryDirectory() as d:
            path = getattr(tiny, builder)(Path(d) / name)
            t0 = time.perf_counter()
            gen = load_generator(name, path, device="cpu", **opts)
            load = time.perf_counter() - t0
            req = GenerationRequest(text="a slow waltz for accordion", duration_s=seconds,
                                    n_candidates=n, seed=0)
            gen.generate(req)  # warm-up: first-call allocations and lazy imports
            best = min(_timed(gen.generate, req) for _ in range(repeats))
        steps = (f"{opts['num_inference_steps']} denoising steps" if "num_inference_steps" in opts
                 else f"{round(seconds * gen.frame_rate)} decoder steps")
        print(f"{name:14} {load:7.2f} {best / n:12.4f} {seconds * n / best:10.1f}  "
              f"({seconds} s at {gen.sample_rate} Hz, {steps})")


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def bench_rerank(trials: int = 2000, dim: int = 64, k: int = 8, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    from generation.generators.rerank import aggregate_sims

    rules = ("top-quarter", "max", "mean")
    wins = dict.fromkeys(rules, 0)
    hijack = dict.fromkeys(rules, 0)
    for _ in range(trials):
        a, b = _unit(rng.standard_normal((2, dim)))
        # Two-mode prior: half the samples around each mode.
        samples = _unit(np.concatenate([a + 0.5 * rng.standard_normal((k // 2, dim)) / np.sqrt(dim),
                                        b + 0.5 * rng.standard_normal((k // 2, dim)) / np.sqrt(dim)]))
        on_mode = _unit(np.stack([a, b]) + 0.3 * rng.standard_normal((2, dim)) / np.sqrt(dim))
        blend = _unit(a + b)
        for rule in rules:
            s_on = aggregate_sims(on_mode @ samples.T, rule)
            s_blend = aggregate_sims((samples @ blend)[None], rule)[0]
            wins[rule] += bool((s_on > s_blend).all())
        # One-mode prior with one stray sample; a candidate sits on the stray one.
        stray = _unit(rng.standard_normal(dim))
        one = _unit(np.concatenate([a + 0.5 * rng.standard_normal((k - 1, dim)) / np.sqrt(dim), stray[None]]))
        good = _unit(a + 0.3 * rng.standard_normal(dim) / np.sqrt(dim))
        for rule in rules:
            s = aggregate_sims(np.stack([stray, good]) @ one.T, rule)
            hijack[rule] += bool(s[0] > s[1])
    print(f"rerank aggregation, {trials} synthetic priors (dim {dim}, k={k} samples):")
    for rule in rules:
        print(f"  {rule:11}: on-mode candidates above the two-mode blend {wins[rule] / trials:6.1%}; "
              f"stray sample hands the win to an off-target candidate {hijack[rule] / trials:6.1%}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench_generators", description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rerank", action="store_true", help="only the aggregation measurement")
    args, _ = ap.parse_known_args(argv)  # python -m benchmarks passes everyone's arguments
    if not args.rerank:
        bench_backends(args.candidates, args.repeats)
    bench_rerank()


if __name__ == "__main__":
    main()
