"""Training and evaluation sets for the default encoder, rendered from the corpus.

Each piece of a split is parsed once and rendered several times (ensemble, soundfont, tempo,
transposition — i.e. pitch shift with the key label moved along — and excerpt all change), then
each render goes through a random room (synthetic reverberation), EQ and level before its
features are computed in the worker. Only the compact features (float16) travel back.

Splits come from :func:`generation.demo.catalog.split_of`, so the encoder never trains on a
test piece of the demo catalog.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generation.demo.catalog import RenderJob, plan_catalog, render_job
from retrieval.encoders.features import SAMPLE_RATE, frames_for

CLIP_S = 20.0  # every render is >= 20 s; training crops windows out of the first 20 s


@dataclass
class FeatureSet:
    """Features and facts of many renders.

    Attributes:
        logmel: float16 ``[N, 64, T]``; chroma: float16 ``[N, 24, T]``; onset: float16 ``[N, T]``.
        rows: the metadata row of each render (captions, labels, piece id...).
    """

    logmel: np.ndarray
    chroma: np.ndarray
    onset: np.ndarray
    rows: list[dict[str, Any]]

    def save(self, path: Path) -> None:
        """Write one ``.npz`` atomically (a temporary file, then a rename).

        Rows are stored as JSON strings so the file loads without pickle.
        """
        import json

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, logmel=self.logmel, chroma=self.chroma, onset=self.onset,
                 rows=np.array([json.dumps(r) for r in self.rows]))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        """Read a set written by :meth:`save` (no pickle: rows come back from their JSON)."""
        import json

        z = np.load(path)
        return cls(z["logmel"], z["chroma"], z["onset"], [json.loads(r) for r in z["rows"]])


def augment_room(audio: np.ndarray, rng: random.Random, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Random room, EQ and level, so the encoder hears music and not one rendering chain.

    Room: exponentially decaying noise impulse response (RT60 0.2-1.5 s), mixed wet/dry.
    EQ: a first-order low or high shelf of up to +-9 dB, and a random low-pass.
    """
    from scipy.signal import lfilter, oaconvolve

    out = audio.astype(np.float32)
    nrng = np.random.default_rng(rng.randrange(2**31))
    if rng.random() < 0.6:
        rt60 = rng.uniform(0.2, 1.2)
        n = int(rt60 * sr)
        t = np.arange(n) / sr
        ir = nrng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * t / rt60).astype(np.float32)
        ir[0] = 1.0
        wet = oaconvolve(out, ir)[: len(out)]
        wet /= np.abs(wet).max() + 1e-8
        mix = rng.uniform(0.2, 0.7)
        out = (1 - mix) * out / (np.abs(out).max() + 1e-8) + mix * wet
    if rng.random() < 0.7:
        a = rng.uniform(0.6, 0.97)
        low = lfilter([1 - a], [1, -a], out)  # one-pole low-pass
        g = 10 ** (rng.uniform(-9, 9) / 20)
        out = (low * g + (out - low)) if rng.random() < 0.5 else (low + (out - low) * g)
    if rng.random() < 0.3:
        out = out + nrng.standard_normal(len(out)).astype(np.float32) * 10 ** (rng.uniform(-60, -35) / 20)
    out = out / (np.abs(out).max() + 1e-8) * 10 ** (rng.uniform(-20, -1) / 20)
    return out.astype(np.float32)


#: What one worker sends back: per-render features (``logmel``, ``chroma``, ``onset``, float16),
#: the renders' metadata rows, and the error that stopped the piece (or None).
_FeaturesOut = tuple[list[dict[str, np.ndarray]], list[dict[str, Any]], str | None]


def _features_job(args: tuple[RenderJob, bool, bool]) -> _FeaturesOut:
    job, augment, production = args
    import torch

    from retrieval.encoders.features import compute_features

    torch.set_num_threads(1)
    res = render_job(job)
    if res.error:
        return [], [], res.error
    rng = random.Random(f"aug:{job.seed}:{job.source.piece_id}")
    n = int(CLIP_S * SAMPLE_RATE)
    feats, rows = [], []
    for audio, row in zip(res.audio, res.rows, strict=True):
        if production:  # encoder v2: room, EQ, compression, noise, codec, level
            from generation.demo.augment import produce

            audio = produce(audio, SAMPLE_RATE, rng)
        elif augment:
            audio = augment_room(audio, rng)
        audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
        f = compute_features(torch.from_numpy(audio)[None])
        feats.append({k: v[0].numpy().astype(np.float16) for k, v in f.items()})
        rows.append(row)
    return feats, rows, None


def build_feature_set(size: int, seed: int, splits: Sequence[str], renders: int,
                      soundfonts: Sequence[str], *, augment: bool = True,
                      paraphrases: bool = False, workers: int | None = None,
                      variety: str | None = None, production: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> FeatureSet:
    """Render ``size`` pieces of ``splits`` ``renders`` times each and compute features.

    ``variety`` ("train" or "heldout", see :mod:`generation.demo.variety`) and ``production``
    (:func:`generation.demo.augment.produce` instead of :func:`augment_room`) are encoder v2's
    render variation; left at their defaults the set is rendered exactly as v1's was.
    """
    plan = plan_catalog(size, seed, splits=splits)[:size]
    jobs = [(RenderJob(i, s, renders, seed, SAMPLE_RATE, "", tuple(soundfonts), write_audio=False,
                       paraphrases=paraphrases, max_duration_s=CLIP_S + 0.05, variety=variety),
             augment, production)
            for i, s in enumerate(plan)]
    t = frames_for(CLIP_S)
    mels, chromas, onsets, rows = [], [], [], []
    done = 0
    workers = workers or os.cpu_count() or 1

    def take(out: _FeaturesOut) -> None:
        nonlocal done
        feats, rws, _err = out
        for f, r in zip(feats, rws, strict=True):
            mels.append(f["logmel"][:, :t])
            chromas.append(f["chroma"][:, :t])
            onsets.append(f["onset"][:t])
            rows.append(r)
        done += 1
        if progress:
            progress(done, len(jobs))

    if workers <= 1:
        for j in jobs:
            take(_features_job(j))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for out in pool.map(_features_job, jobs, chunksize=2):
                take(out)
    return FeatureSet(np.stack(mels), np.stack(chromas), np.stack(onsets), rows)
