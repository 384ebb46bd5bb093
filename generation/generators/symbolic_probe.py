"""Which ensemble the encoder hears in a request: a timbre probe for the search's first round.

Why: in the encoder's space the instrument dominates what a text query lands near. Measured
on the demo catalog (``tunescope eval-backfill``), "a waltz" with every waltz removed is best
answered by *solo fiddle* marches and airs, "a jig" by slip jigs on fiddle and accordion; a
first search round whose ensembles come only from the melody model's own prediction rarely
tries the timbre the query is heard in, and the cross-entropy rounds can only refit around
what round 0 tried.

The probe renders a couple of short, neutral melodies (sampled once from the model: 4/4,
major, moderate) on every ensemble, embeds them with the platform's encoder, and keeps one
unit vector per ensemble. For a request it scores each ensemble the way the search scores a
candidate (closeness to the prior's samples and to the query) and hands the search a
categorical over the best few: a soft prior over timbres, which round 0 mixes half-and-half
with the model's own choice. Built once per generator (about 60 short renders, a few seconds),
on first use or by :meth:`EnsembleProbe.warm`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from generation.generators.symbolic_model import sample
from generation.generators.symbolic_render import Performance, play
from generation.symbolic import tokens as T

if TYPE_CHECKING:
    from generation.generators.symbolic_model import MelodyModel
    from retrieval.encoders.base import Encoder

#: Seconds per probe clip, melodies per ensemble, ensembles handed to the search, and the
#: softmax temperature over their scores (cosines of probes differ by ~0.05-0.2 between timbres).
CLIP_S, MELODIES, TOP, TEMPERATURE = 6.0, 2, 4, 0.03


class EnsembleProbe:
    """One audio embedding per ensemble (module docstring), built lazily, thread-safe."""

    def __init__(self, model: MelodyModel, encoder_fn: object, *, sample_rate: int, soundfont: str,
                 seed: int = 0) -> None:
        self._model, self._encoder_fn = model, encoder_fn
        self.sample_rate, self.soundfont, self.seed = sample_rate, soundfont, seed
        self.names = [e for e in T.ENSEMBLES if e != "unknown"]
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def warm(self) -> np.ndarray:
        """The ``[ensembles, dim]`` unit probe vectors (rendered and embedded on the first call)."""
        with self._lock:
            if self._vectors is None:
                self._vectors = self._build()
            return self._vectors

    def _build(self) -> np.ndarray:
        from retrieval.encoders.base import l2_normalize

        encoder: Encoder = self._encoder_fn()  # type: ignore[operator]
        forced = {"meter": "4/4", "mode": "major", "tempo_class": "moderate"}
        seqs = sample(self._model, None, n=MELODIES, seed=[self.seed + i for i in range(MELODIES)],
                      forced=forced, temperature=0.9, bars=4)
        melodies = [T.decode(s).events for s in seqs]
        waves = []
        for name in self.names:
            for i, ev in enumerate(melodies):
                perf = Performance(name, 100.0, 0, self.soundfont, self.seed + i)
                waves.append(play(ev, "4/4", False, perf, CLIP_S, self.sample_rate)[0])
        import soxr

        if encoder.sample_rate != self.sample_rate:
            waves = [soxr.resample(w, self.sample_rate, encoder.sample_rate).astype(np.float32) for w in waves]
        emb = l2_normalize(encoder.embed_audio(waves)).reshape(len(self.names), MELODIES, -1).mean(1)
        return l2_normalize(emb).astype(np.float32)

    def weights(self, targets: np.ndarray | None, query_vec: np.ndarray | None,
                query_weight: float) -> dict[str, float]:
        """A categorical over the :data:`TOP` ensembles the request is heard in ({} with nothing to compare)."""
        if targets is None and query_vec is None:
            return {}
        v = self.warm()
        score = np.zeros(len(v), np.float32)
        if targets is not None:
            sims = np.sort(v @ targets.T, axis=1)[:, ::-1]
            k = max(1, -(-targets.shape[0] // 4))  # the re-ranker's top-quarter aggregate
            score += (1.0 - query_weight if query_vec is not None else 1.0) * sims[:, :k].mean(1)
        if query_vec is not None:
            score += (query_weight if targets is not None else 1.0) * (v @ query_vec)
        top = np.argsort(-score)[:TOP]
        p = np.exp((score[top].astype(np.float64) - float(score[top].max())) / TEMPERATURE)
        return {self.names[i]: float(x) for i, x in zip(top, p / p.sum(), strict=True)}
