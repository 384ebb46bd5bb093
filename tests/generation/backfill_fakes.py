"""A deterministic stand-in for the backfill pipeline: sine-tone keepers with real WAV audio.

Everything is a function of the job's query and the candidate index, so a retried job yields
byte-identical candidates (what a seeded generator does), and the store's idempotency is what
keeps them from being stored twice. ``from_settings`` is the ``module:factory`` the
``tunescope worker`` subprocess loads in the crash test; it reads its fault injection from
``TS_FAKE_*`` variables (test code only):

- ``TS_FAKE_SLEEP_MAX``: random sleep (0..max s) before each candidate;
- ``TS_FAKE_KILL_AFTER_BLOB``: probability of SIGKILLing itself right after a keeper's audio
  reached the store, before its rows are committed;
- ``TS_FAKE_KILL_BEFORE_COMMIT``: probability of SIGKILLing itself inside the keeper's
  transaction, after the rows were flushed and before COMMIT.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import time
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from generation.backfill.worker import Keeper, Pipeline
from index.models import BackfillJob
from index.repo.backfill import Provenance

ENCODER_ID = "fake-sine@1"
DIM = 8
N_CANDIDATES = 3


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def sine_wav(freq: float, seconds: float = 1.0, sample_rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate,
             format="WAV", subtype="PCM_16")
    return buf.getvalue()


def keeper(query: str, index: int, dim: int = DIM) -> Keeper:
    rng = np.random.default_rng(_seed(query, index))
    freq = 180.0 + (_seed(query) % 10**6) / 2500 + 23.0 * index  # distinct per query
    vec = rng.standard_normal(dim).astype(np.float32)
    prior = rng.standard_normal((2, dim)).astype(np.float32)
    return Keeper(
        audio=sine_wav(freq),
        metadata={"title": f"{query} #{index}", "tags": ["generated", "sine"], "mode": "major",
                  "tempo_bpm": 100.0, "sine_hz": freq},
        embedding=vec / np.linalg.norm(vec),
        provenance=Provenance(candidate_index=index, prompt=query, generator_id="fake-sine",
                              weights_id="none", seed=_seed(query, index) % 2**62,
                              prior_samples=prior, scores={"query": 0.5 + index / 10},
                              gates={"max_similarity": 0.1, "copied_run": 0},
                              neighbour_track_ids=[1, 2]))


def make_generate(n: int = N_CANDIDATES, *, sleep_max: float = 0.0,
                  rng: random.Random | None = None, dim: int = DIM):
    rng = rng or random.Random(0)

    def generate(job: BackfillJob) -> Iterator[Keeper]:
        if "explode" in job.query:
            raise RuntimeError(f"the generator cannot make {job.query!r}")
        for i in range(int(job.request.get("n", n))):
            if sleep_max:
                time.sleep(rng.uniform(0, sleep_max))
            yield keeper(job.query, i, dim)

    return generate


def _install_kills(rng: random.Random) -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from index.models import TrackProvenance
    from index.store import AudioStore

    p_blob = float(os.environ.get("TS_FAKE_KILL_AFTER_BLOB", "0"))
    p_commit = float(os.environ.get("TS_FAKE_KILL_BEFORE_COMMIT", "0"))
    put = AudioStore.put_bytes

    def put_then_maybe_die(self: AudioStore, data: bytes, ext: str):
        out = put(self, data, ext)
        if rng.random() < p_blob:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    AudioStore.put_bytes = put_then_maybe_die

    @event.listens_for(Session, "before_commit")
    def maybe_die(session: Session) -> None:
        if any(isinstance(o, TrackProvenance) for o in session.new) and rng.random() < p_commit:
            session.flush()  # the rows are in the database's transaction, not committed
            os.kill(os.getpid(), signal.SIGKILL)


def from_settings(settings: object) -> Pipeline:
    rng = random.Random(int(os.environ.get("TS_FAKE_SEED", "0")) ^ os.getpid())
    _install_kills(rng)
    sleep_max = float(os.environ.get("TS_FAKE_SLEEP_MAX", "0"))
    return Pipeline(make_generate(sleep_max=sleep_max, rng=rng), ENCODER_ID)


def tiny_pipeline(settings: object) -> Pipeline:
    """Keepers in the tiny test encoder's space (tests/api/tiny_encoder.py: 32 wide)."""
    return Pipeline(make_generate(dim=32), "tiny-test@32")
