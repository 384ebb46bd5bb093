"""Production augmentation speed: audio seconds processed per wall second, on one core.

Arms, in the same run and on the same clips (20 s, 16 kHz, the training clip):
- ``augment_room`` (baseline): the training set's current room + EQ + noise + level;
- ``produce``: the default :class:`generation.demo.augment.ProductionConfig` chain;
- each stage alone, always on (``ProductionConfig().only(stage)``), to see where time goes.

The clips are synthetic (decaying harmonic notes in loud and soft phrases): the cost of every
stage depends on the length and rate, not the notes. Single-threaded BLAS/FFT is forced so the
figure is one core's. Run: ``python -m benchmarks.bench_augment [--clips N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

SR = 16000
CLIP_S = 20.0


def _clip(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(CLIP_S * SR)
    out = np.zeros(n, np.float32)
    t = np.arange(int(0.25 * SR)) / SR
    for i, start in enumerate(range(0, n - len(t), len(t))):
        f0 = 196 * 2 ** (rng.integers(0, 15) / 12)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * np.exp(-t / 0.1)
        out[start:start + len(t)] += (1.0 if (i // 8) % 2 == 0 else 0.2) * note
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def _rate(fn, clips) -> float:
    fn(clips[0], random.Random(-1))  # warm-up (imports, FFT plans)
    t0 = time.perf_counter()
    for i, c in enumerate(clips):
        fn(c, random.Random(i))
    return len(clips) * CLIP_S / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=40)
    args = parser.parse_args(argv)

    from generation.demo.augment import ProductionConfig, produce
    from generation.demo.training_data import augment_room

    clips = [_clip(i) for i in range(args.clips)]
    base = _rate(lambda c, r: augment_room(c, r, SR), clips)
    default = _rate(lambda c, r: produce(c, SR, r), clips)
    print(f"{args.clips} clips x {CLIP_S:.0f} s at {SR} Hz, one core")
    print(f"{'arm':32s} {'audio s/s':>10s} {'vs baseline':>12s}")
    print(f"{'augment_room (baseline)':32s} {base:10.1f} {1.0:11.2f}x")
    print(f"{'produce, default chain':32s} {default:10.1f} {default / base:11.2f}x")
    cfg = ProductionConfig()
    for stage in ("room", "eq", "band_limit", "compress", "noise", "codec"):
        only = cfg.only(stage)
        if stage == "codec":
            for fmt, p_mp3 in (("mp3", 1.0), ("ogg", 0.0)):
                r = _rate(lambda c, rr, o=only, p=p_mp3: produce(c, SR, rr, _with(o, p)), clips[:10])
                print(f"{'only codec ' + fmt:32s} {r:10.1f} {r / base:11.2f}x")
            continue
        r = _rate(lambda c, rr, o=only: produce(c, SR, rr, o), clips[:10])
        print(f"{'only ' + stage:32s} {r:10.1f} {r / base:11.2f}x")


def _with(cfg, p_mp3: float):
    from dataclasses import replace

    return replace(cfg, p_mp3=p_mp3)


if __name__ == "__main__":
    main()
