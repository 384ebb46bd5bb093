"""Ingestion throughput: tracks/s and seconds of audio per wall second.

Baseline, measured in the same run on the same files: what any ingester must do at least --
read every file (``soundfile.read``) and hash its bytes (sha256). The ratio ingest/baseline says
how much the catalog adds on top (validation passes, store copy + fsync, database batches).

Usage::

    python -m benchmarks.bench_ingest            # 200 tracks of 20 s, FLAC, SQLite
    python -m benchmarks.bench_ingest --quick    # 24 tracks
    python -m benchmarks.bench_ingest --db-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from sqlalchemy import text

from index.db import open_catalog
from index.ingest import ingest
from index.store import AudioStore, hash_file

SECONDS = 20.0


def make_tracks(folder: Path, n: int, sample_rate: int, fmt: str, seed: int = 0) -> float:
    """Write ``n`` distinct 20 s chords with a little noise; return total audio seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * sample_rate)) / sample_rate
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        freqs = 110.0 * 2 ** (rng.integers(0, 36, 3) / 12)
        wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) * 0.2
        wave += 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"track{i:04d}.{fmt}", wave.astype(np.float32), sample_rate)
    return n * SECONDS


def baseline(files: list[Path]) -> float:
    """Seconds to read (decode) and sha256 every file once."""
    start = time.perf_counter()
    for path in files:
        sf.read(path, dtype="float32")
        hash_file(path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench_ingest", description=__doc__)
    p.add_argument("--quick", action="store_true", help="24 tracks instead of 200")
    p.add_argument("-n", type=int, default=None, help="number of 20 s tracks")
    p.add_argument("--format", default="flac", choices=["flac", "wav", "mp3", "ogg"])
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--db-url", default=None, help="default: a SQLite file in a temp folder")
    args = p.parse_args(argv if argv is not None else [])
    n = args.n or (24 if args.quick else 200)

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        audio_s = make_tracks(root / "src", n, args.sample_rate, args.format)
        files = sorted((root / "src").iterdir())
        baseline(files[:2])  # warm the page cache and libsndfile like ingest will find them
        base_s = baseline(files)
        url = args.db_url or f"sqlite:///{root / 'catalog.db'}"
        factory = open_catalog(url)
        if args.db_url:  # a shared server: start from an empty catalog
            with factory() as s:
                for table in ("embeddings", "tracks", "quarantine", "ingest_runs"):
                    s.execute(text(f"DELETE FROM {table}"))
                s.commit()
        start = time.perf_counter()
        summary = ingest([root / "src"], factory, AudioStore(root / "store"),
                         batch_size=args.batch_size, progress=False)
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        again = ingest([root / "src"], factory, AudioStore(root / "store"),
                       batch_size=args.batch_size, progress=False)
        rerun_s = time.perf_counter() - start
        factory.kw["bind"].dispose()
    assert summary.ingested == n and again.duplicates == n, (summary, again)

    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
    print(f"{n} tracks x {SECONDS:.0f} s {args.format} @ {args.sample_rate} Hz mono, "
          f"batch {args.batch_size}, {url.split(':')[0]}")
    rows = [("baseline read+sha256", base_s), ("ingest (first run)", ingest_s),
            ("re-run (all duplicates)", rerun_s)]
    print(f"{'':26} {'wall s':>8} {'tracks/s':>9} {'audio s/s':>10}")
    for label, secs in rows:
        print(f"{label:26} {secs:8.2f} {n / secs:9.1f} {audio_s / secs:10.0f}")
    print(f"ingest / baseline wall time: {ingest_s / base_s:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
