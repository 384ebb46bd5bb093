"""Speed of the embedded symbolic generator on one core: audio seconds per wall second.

Three figures, all with ``torch.set_num_threads(1)``:

- **one candidate**: sample one 16-bar melody conditioned on an embedding (grammar-constrained
  GRU steps) and render ``--duration`` seconds of it (arrangement + tinysoundfont): the
  issue's target is >= 50x real time for 20 s;
- **a batch of 8**: the same, eight melodies sampled in one batch (the search's unit), per
  candidate;
- **a full search**: ``SymbolicGenerator.generate`` with its default cross-entropy-method
  search (6 rounds of 8, every candidate rendered and embedded by the committed encoder for
  scoring), for 4 candidates.

Run: ``nice -n 10 python -m benchmarks.bench_symbolic_generator [--duration 20] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _one(model: object, cond: np.ndarray, n: int, seed: int, duration: float) -> tuple[float, float]:
    """(wall, CPU) seconds to sample ``n`` melodies in one batch and render each.

    CPU time is reported beside wall time because this machine is shared: under a load of 8 on
    2 cores the process gets a fraction of a core, and only its CPU time says what one core
    of its own would do.
    """
    from generation.generators.symbolic_model import sample
    from generation.generators.symbolic_render import Performance, play
    from generation.symbolic import tokens as T

    t, c = time.perf_counter(), time.process_time()
    seqs = sample(model, np.repeat(cond[None, :], n, 0), n=n, seed=seed, bars=16)
    for i, s in enumerate(seqs):
        mel = T.decode(s)
        ens = mel.attributes.get("ensemble", "solo piano")
        ens = "solo piano" if ens == "unknown" else ens
        perf = Performance(ens, 100.0, 0, seed=seed + i)
        play(mel.events, mel.attributes["meter"], mel.attributes.get("mode") == "minor", perf, duration, 22050)
    return time.perf_counter() - t, time.process_time() - c


def main(argv: list[str] | None = None) -> None:
    """Print the three speed figures."""
    import torch

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-search", action="store_true", help="skip the full-search figure")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from generation.generators.symbolic_training import DEFAULT_WEIGHTS, load_model

    model, meta = load_model(DEFAULT_WEIGHTS)
    rng = np.random.default_rng(0)
    cond = rng.normal(size=model.config.cond_dim).astype(np.float32)
    cond /= np.linalg.norm(cond)
    _one(model, cond, 1, 999, args.duration)  # warm-up: soundfont load, first torch calls
    single = [_one(model, cond, 1, s, args.duration) for s in range(args.repeats)]
    batch = [tuple(x / 8 for x in _one(model, cond, 8, 100 + s, args.duration)) for s in range(args.repeats)]
    print(f"weights {meta['weights_id']}, {args.duration:.0f} s candidates, one thread")
    for name, runs in (("one candidate", single), ("batch of 8 (each)", batch)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:18s} wall {wall:.3f} s ({args.duration / wall:.0f}x real time), "
              f"CPU {cpu:.3f} s ({args.duration / cpu:.0f}x real time on one core)")
    if args.no_search:
        return
    from generation.generators import GenerationRequest, load_generator
    from retrieval.encoders import load_encoder

    enc = load_encoder("default", device="cpu")
    gen = load_generator("symbolic", encoder=enc)
    target = enc.embed_text(["a lively jig on the fiddle"])
    req = GenerationRequest(text="a lively jig on the fiddle", target_embeddings=target,
                            duration_s=args.duration, n_candidates=4, seed=0)
    gen.generate(GenerationRequest(text="warm up", duration_s=2.0, n_candidates=1))
    t, c = time.perf_counter(), time.process_time()
    cands = gen.generate(req)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    made = 3 * 8
    print(f"full search        wall {wall:.2f} s, CPU {cpu:.2f} s for {len(cands)} keepers of {made} "
          f"candidates rendered, embedded and scored")


if __name__ == "__main__":
    main()
