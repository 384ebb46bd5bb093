"""The default generator in the backfill pipeline: audio seconds per wall second, and time to first track.

Figures (``torch.set_num_threads(--threads)``, 1 by default: the one-core figure), each with
its baseline measured in the same run, so a loaded machine shifts both alike:

- **one candidate** of ``--duration`` s: the symbolic generator with ``search_rounds=1`` and one
  candidate (sample a melody, arrange, render, embed for its score), against the **renderer
  alone** playing an already-sampled melody of the same length;
- **a full job**: :meth:`BackfillPipeline.run` for ``n = --n`` keepers (prior samples, the
  default candidate search (6 rounds of 2n candidates, the first keeper handed on after
  round 3), re-ranking, the melody and acoustic gates), against the same job with ``search_rounds=1`` (no search);
- **enqueue to first stored track**: a real worker thread (models already loaded, as in a
  running server) on a real SQLite catalog of ``--catalog`` tones embedded by clap-mini; a job
  is enqueued and the clock stops when its first keeper is committed (and when the job is done).
  The worker's cold start (``from_settings``: encoder, prior, generator) is timed separately.

Wall and CPU seconds are both printed: on a shared machine the process gets a fraction of a
core and only its CPU time says what one core of its own would do.

Run: ``nice -n 10 python -m benchmarks.bench_generator [--duration 20] [--n 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "a lively jig for fiddle"


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def _median(runs: list[tuple[float, float, Any]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _line(name: str, audio_s: float, wall: float, cpu: float, base: tuple[float, float] | None = None) -> None:
    ratio = "" if base is None else f"  = {wall / base[0]:.2f}x the baseline's wall, {cpu / base[1]:.2f}x its CPU"
    print(f"{name:34s} wall {wall:7.2f} s ({audio_s / wall:6.1f} audio s / wall s)  "
          f"CPU {cpu:7.2f} s ({audio_s / cpu:6.1f} / CPU s){ratio}", flush=True)


def _single(gen: Any, enc: Any, prior: Any, duration: float, repeats: int) -> None:
    from generation.generators import GenerationRequest
    from generation.generators.symbolic_render import Performance, play
    from generation.symbolic import tokens as T

    targets = prior.sample(enc.embed_text([QUERY]), num_samples=8, seed=0)
    seq = None

    def one(seed: int) -> Any:
        nonlocal seq
        c = gen.generate(GenerationRequest(QUERY, targets, {}, duration, 1, seed))[0]
        seq = c.score["tokens"]
        return c

    def render_only() -> None:
        mel = T.decode(seq)
        a = mel.attributes
        play(mel.events, a["meter"], a.get("mode") == "minor", Performance("solo fiddle", 110.0, 0), duration, 22050)

    gen.search_rounds = 1
    one(999)  # warm-up: soundfont, first torch calls
    cand = [_timed(lambda s=s: one(s)) for s in range(repeats)]
    base = [_timed(render_only) for _ in range(repeats)]
    _line("renderer alone (baseline)", duration, *_median(base))
    _line("one candidate, search_rounds=1", duration, *_median(cand), _median(base))


def _job(pipeline: Any, gen: Any, n: int, duration: float, repeats: int, rounds: int) -> None:
    from generation.backfill.pipeline import JobRequest, Outcome

    def run(rounds: int, seed: int) -> list[Any]:
        gen.search_rounds = rounds
        return [o for o in pipeline.run(QUERY, JobRequest(n, duration), seed) if isinstance(o, Outcome)]

    base = [_timed(lambda s=s: run(1, s)) for s in range(repeats)]
    full = [_timed(lambda s=s: run(rounds, s)) for s in range(repeats)]
    kept = [sum(o.kept for o in r[2]) for r in full]
    _line(f"job n={n}, search_rounds=1 (baseline)", n * duration, *_median(base))
    _line(f"job n={n}, {rounds}-round search (default)", n * duration, *_median(full), _median(base))
    print(f"{'':34s} kept per job: {kept}; candidates gated: {[len(r[2]) for r in full]}", flush=True)


def _worker(pipeline: Any, enc: Any, duration: float, n: int, tones: int) -> None:
    import soundfile as sf

    from generation.backfill.catalog import DatabaseCatalog
    from generation.backfill.worker import start_worker_thread
    from index.audio import decode
    from index.db import open_catalog
    from index.ingest import ingest
    from index.models import Embedding
    from index.repo import backfill as q
    from index.store import AudioStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "src").mkdir()
        sr = 16_000
        t = np.arange(3 * sr) / sr
        for i in range(tones):
            wave = 0.3 * np.sin(2 * np.pi * 110 * 2 ** (i / 7) * t)
            sf.write(root / "src" / f"t{i}.wav", wave.astype(np.float32), sr)
        (root / "src" / "metadata.jsonl").write_text(
            "".join(f'{{"path": "t{i}.wav", "piece_id": "w{i}"}}\n' for i in range(tones)))
        factory = open_catalog(f"sqlite:///{root / 'catalog.db'}")
        store = AudioStore(root / "store")

        def embed(session: Any, tracks: list[Any]) -> None:
            waves = [decode(store.path_for(x.audio_path), enc.sample_rate) for x in tracks]
            for x, v in zip(tracks, enc.embed_audio(waves), strict=True):
                session.add(Embedding(track_id=x.id, encoder_id=enc.id, dim=enc.dim, vector=v.astype("<f4").tobytes()))

        ingest([root / "src"], factory, store, metadata=root / "src" / "metadata.jsonl", on_batch=embed, progress=False)
        pipeline.catalog = DatabaseCatalog(factory, enc.id, enc.dim)
        first = threading.Event()
        thread, stop = start_worker_thread(factory, store, pipeline.generate, worker_id="bench", lease_s=60,
                                           heartbeat_s=5, encoder_id=enc.id, poll_s=0.02,
                                           on_stored=lambda tid, k: first.set())
        time.sleep(0.2)  # the worker is polling an empty queue, as in a running server
        t0, c0 = time.perf_counter(), time.process_time()
        job, _ = q.enqueue(factory, "bench", QUERY, {"n": n, "duration_s": duration}, recent_window_s=0)
        first.wait(600)
        t_first, c_first = time.perf_counter() - t0, time.process_time() - c0
        while q.job_progress(factory, job.id).status != "done" and time.perf_counter() - t0 < 600:
            time.sleep(0.05)
        t_done, c_done = time.perf_counter() - t0, time.process_time() - c0
        stop.set()
        thread.join(60)
        p = q.job_progress(factory, job.id)
        print(f"enqueue -> first stored track      wall {t_first:7.2f} s  CPU {c_first:7.2f} s  "
              f"(catalog of {tones} tracks, SQLite)", flush=True)
        print(f"enqueue -> job done                 wall {t_done:7.2f} s  CPU {c_done:7.2f} s  "
              f"({len(p.result_track_ids)} stored; progress: generated {p.progress.get('generated')}, "
              f"rejected {p.progress.get('rejected')} {p.progress.get('rejected_by')})", flush=True)
        factory.kw["bind"].dispose()


def main(argv: list[str] | None = None) -> None:
    """Print the figures above."""
    import torch

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--catalog", type=int, default=40, help="tones in the worker's SQLite catalog")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from generation.backfill.novelty import build_ngram_index
    from generation.backfill.pipeline import BackfillPipeline
    from generation.generators import load_generator
    from generation.symbolic.corpus import list_sources
    from retrieval.encoders import load_encoder
    from retrieval.prior import prior_weights_path
    from retrieval.prior.pipeline import PriorPipeline

    t0, c0 = time.perf_counter(), time.process_time()
    enc = load_encoder("default", device="cpu")
    prior = PriorPipeline.from_pretrained(prior_weights_path(enc.id))
    gen = load_generator("symbolic", encoder=enc)
    enc.embed_text(["warm up"])
    cold = time.perf_counter() - t0, time.process_time() - c0
    # A real n-gram index of 21 corpus pieces (the full one takes 40 CPU-minutes to build): a
    # lookup is one binary search, microseconds at any size (bench_novelty).
    ngram = build_ngram_index(list_sources()[::700])
    print(f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}, load average "
          f"{os.getloadavg()[0]:.1f}; weights {gen.weights_id}, encoder {enc.id}; {args.duration:.0f} s candidates",
          flush=True)
    print(f"{'cold start (encoder, prior, gen.)':34s} wall {cold[0]:7.2f} s  CPU {cold[1]:7.2f} s", flush=True)
    pipeline = BackfillPipeline(enc, prior, gen, ngram=ngram, catalog=None)
    rounds = gen.search_rounds  # the default, restored after the single-candidate and baseline runs
    _single(gen, enc, prior, args.duration, args.repeats)
    _job(pipeline, gen, args.n, args.duration, args.repeats, rounds)
    gen.search_rounds = rounds
    _worker(pipeline, enc, args.duration, args.n, args.catalog)


if __name__ == "__main__":
    main()
