"""Novelty gate benchmark: how fast the melodic n-gram index answers, and what it holds.

Loads the index that ``tunescope build-novelty-index`` wrote under ``$TUNESCOPE_HOME``
(default ``var``); without one it builds a small one from the first ``--pieces`` corpus
pieces (said so in the output). Queries, each timed over many calls (median and p90):

- ``copies_corpus`` / ``longest_copied_run`` on an ``Events`` (what the generator hands over:
  voices split, skyline, tokens, hashes, lookups);
- the same on a ``(pitch, onset)`` line (no voice handling);
- the bare lookup of already-hashed windows;

for 64- and 256-note novel (random) melodies, real corpus melodies (hits) and a four-part
chorale. Also reported: load time (memory-mapped), entries, size, build time.

Usage::

    PYTHONPATH=. python -m benchmarks.bench_novelty            # the saved full index
    PYTHONPATH=. python -m benchmarks.bench_novelty --pieces 200
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from generation.backfill.novelty import NgramIndex, build_ngram_index, melodic_lines, notes_hashes
from generation.symbolic.corpus import corpus_root, list_sources
from generation.symbolic.render import Events, load_score, score_to_events


def _time_us(fn, repeat: int) -> tuple[float, float]:
    for _ in range(min(50, repeat)):
        fn()
    times = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        times[i] = time.perf_counter_ns() - t0
    return float(np.median(times) / 1e3), float(np.percentile(times, 90) / 1e3)


def _random_line(rng: np.random.Generator, n: int) -> Events:
    return Events(onset=np.cumsum(rng.choice([0.25, 0.5, 0.75, 1.0], n)), dur=np.full(n, 0.5),
                  pitch=rng.integers(55, 84, n).astype(np.int16), voice=np.zeros(n, np.int16),
                  strength=np.zeros(n, np.float32), length_ql=float(n), n_voices=1, bar_ql=4.0,
                  beat_ql=1.0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench_novelty")
    ap.add_argument("--index", type=Path, default=Path(os.environ.get("TUNESCOPE_HOME", "var"))
                    / "novelty" / "melody-12grams.npy")
    ap.add_argument("--pieces", type=int, default=300, help="build from this many if no index")
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--pad-to", type=int, default=0,
                    help="without a saved index: pad the built one with random hashes to this "
                         "many entries (lookup cost depends on the array's size)")
    args = ap.parse_args(argv)
    sources = indexed = list_sources()
    if args.index.is_file():
        t0 = time.perf_counter()
        index = NgramIndex.load(args.index)
        print(f"loaded {args.index} (memory-mapped) in {(time.perf_counter() - t0) * 1e3:.1f} ms")
    else:
        print(f"no index at {args.index}: building from {args.pieces} pieces spread over the corpus")
        indexed = sources[::max(1, len(sources) // args.pieces)][:args.pieces]
        index = build_ngram_index(indexed)
        if args.pad_to > len(index.hashes):
            pad = np.random.default_rng(1).integers(0, 2**63, args.pad_to - len(index.hashes),
                                                    dtype=np.uint64)
            print(f"padded with {len(pad):,} random hashes to the full index's size")
            index = NgramIndex(np.unique(np.concatenate([index.hashes, pad * 2])), index.n,
                               index.meta)
    m = index.meta
    print(f"index: {len(index.hashes):,} distinct {index.n}-grams, "
          f"{index.hashes.nbytes / 2**20:.1f} MiB, from {m.get('pieces')} pieces "
          f"({m.get('failed')} unparsable), built in {m.get('seconds', 0):.0f} s")
    rng = np.random.default_rng(0)
    by_family = {}
    for s in indexed:  # real melodies that the index holds: hits
        by_family.setdefault(s.family, s)
    real = {f"corpus {fam}": score_to_events(load_score(corpus_root() / s.path, s.abc))
            for fam, s in by_family.items() if fam in ("irish", "essen", "chorale")}
    cases = {"novel 64 notes": _random_line(rng, 64), "novel 256 notes": _random_line(rng, 256),
             **real}
    print(f"{'case':<18} {'notes':>6} {'run':>4} | {'copies_corpus':>15} {'longest_run':>15} "
          f"{'line only':>15} {'lookup only':>15}   (median / p90 us)")
    for name, ev in cases.items():
        line = melodic_lines(ev)[0]
        hashed = notes_hashes(line)[0]
        cols = [_time_us(lambda: index.copies_corpus(ev), args.repeat),  # noqa: B023
                _time_us(lambda: index.longest_copied_run(ev), args.repeat),  # noqa: B023
                _time_us(lambda: index.copies_corpus(line), args.repeat),  # noqa: B023
                _time_us(lambda: index._found(hashed), args.repeat)]  # noqa: B023
        print(f"{name:<18} {len(ev.pitch):>6} {index.longest_copied_run(ev):>4} | "
              + " ".join(f"{a:>7.1f} / {b:>5.1f}" for a, b in cols))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"numpy {np.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
