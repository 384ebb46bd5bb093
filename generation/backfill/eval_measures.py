"""The measuring instruments of ``eval-backfill``: audio re-estimation, distances, the n-gram baseline.

Split from :mod:`generation.backfill.evaluation` (which imports them from here): each answers
one question about a set of candidates without knowing about holes or queries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from generation.symbolic.render import Events

if TYPE_CHECKING:
    from generation.generators.base import Candidate
    from retrieval.encoders.base import Encoder

log = logging.getLogger(__name__)
Row = Mapping[str, Any]


# ---------------------------------------------------------------------- audio re-estimation

_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


class AudioReader:
    """Attributes re-estimated from audio alone (no score): what a listener could check.

    Two kinds of reading, chosen per attribute by which one reads the catalog's *real* tracks
    better (``eval-backfill`` prints each one's accuracy on the real tracks it was not fitted
    on, so the figure for generated audio can be read against the instrument's own error):

    - rules, needing nothing fitted: mode from the mean chroma's best Krumhansl–Kessler key;
      tempo from the comb salience of the onset envelope's autocorrelation (heard beats of
      0.35–1.1 s; a period whose half is just as periodic loses: it is a bar, not a beat);
      meter class and ensemble by the encoder's zero-shot choice among the alternatives'
      descriptions;
    - :class:`AttributeProbes` (when given): logistic probes of the audio embedding fitted on
      the catalog's training-split tracks, labels from their metadata. On the demo catalog's
      342 validation and test tracks (2026-12-04, encoder v2) they read tempo class 0.85
      (the rule: 0.49 on a 240-track sample of the catalog), mode 0.81 (rule 0.75) and
      ensemble 0.96 (zero-shot 0.91). For meter no probe was clearly better than the
      zero-shot reading (probes of the embedding, with and without the encoder's rhythm
      features, balanced or not: accuracy 0.61-0.67, balanced 0.54-0.60; zero-shot 0.65,
      balanced 0.58), so meter stays zero-shot: triple metre is the weak reading (0.37 of
      waltz-time tracks read as triple).

    The probes read the same embedding space the generator's search optimises in; they are
    fitted on real renders only and never see a generated candidate.
    """

    METER_TEXT = {"duple": "a tune in duple time, two or four beats to the bar",
                  "triple": "a tune in triple time, three beats to the bar, like a waltz",
                  "compound": "a tune in compound time, 6/8, like a jig"}

    def __init__(self, encoder: Encoder, ensembles: Sequence[str],
                 probes: AttributeProbes | None = None) -> None:
        self.encoder = encoder
        self.ensembles = list(ensembles)
        self.probes = probes
        self._meter = encoder.embed_text(list(self.METER_TEXT.values()))
        self._ens = encoder.embed_text([f"music played on {e}" for e in self.ensembles])

    def read(self, audio: np.ndarray, sample_rate: int, embedding: np.ndarray) -> dict[str, str]:
        """Mode, tempo class, meter class and ensemble of ``audio`` (its embedding given)."""
        import torch

        from retrieval.captions import tempo_bucket
        from retrieval.encoders.features import FPS, SAMPLE_RATE, compute_features

        wave = _resample(np.asarray(audio, np.float32), sample_rate, SAMPLE_RATE)
        f = compute_features(torch.from_numpy(wave))
        chroma = f["chroma"][0, :12].mean(1).numpy()
        best, minor = -2.0, False
        for r in range(12):
            for prof, is_minor in ((_KK_MAJOR, False), (_KK_MINOR, True)):
                c = float(np.corrcoef(chroma, np.roll(prof, r))[0, 1])
                if c > best:
                    best, minor = c, is_minor
        onset = f["onset"][0].numpy().astype(np.float64)
        onset = onset - onset.mean()
        n = len(onset)
        spec = np.fft.rfft(onset, 2 * n)
        ac = np.fft.irfft(np.abs(spec) ** 2, 2 * n)[:n]
        ac = ac / (ac[0] + 1e-9)
        lags = np.arange(int(0.35 * FPS), min(int(1.1 * FPS), n // 4))
        # A period whose half is as periodic is a bar or a half-time reading, not the heard beat.
        sal = [ac[p] + 0.25 * ac[min(2 * p, n - 1)] - 0.5 * ac[p // 2] for p in lags]
        period = lags[int(np.argmax(sal))] if len(lags) else int(0.6 * FPS)
        bpm = 60.0 * FPS / period
        e = np.asarray(embedding, np.float32)
        out = {"mode": "minor" if minor else "major", "tempo_class": tempo_bucket(bpm),
               **self.read_embedding(e, probes=False)}
        if self.probes is not None:
            out.update(self.probes.predict(e))
        return out

    def read_embedding(self, embedding: np.ndarray, probes: bool = True) -> dict[str, str]:
        """What the embedding alone says: zero-shot meter and ensemble, then the probes."""
        e = np.asarray(embedding, np.float32)
        out = {"meter": list(self.METER_TEXT)[int(np.argmax(self._meter @ e))],
               "ensemble": self.ensembles[int(np.argmax(self._ens @ e))]}
        if probes and self.probes is not None:
            out.update(self.probes.predict(e))
        return out


class AttributeProbes:
    """Multinomial logistic probes of unit audio embeddings, one per attribute.

    Standardised inputs, L2 penalty ``1 / (2 C)`` on the weights (C = 0.1, the best of 0.1 and
    1 on the demo catalog's held-out split), fitted by L-BFGS on the summed log-loss. Small
    enough to fit at the start of each ``eval-backfill`` run (13 s on 1,100 tracks), so
    nothing is stored and the probes always match the encoder under test.
    """

    ATTRIBUTES = ("mode", "tempo_class", "ensemble")

    def __init__(self, models: Mapping[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self.models = dict(models)  # attribute -> (classes, mean, scale, weights [d+1, k])

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: Mapping[str, Sequence[str]], c: float = 0.1,
            min_per_class: int = 3) -> AttributeProbes:
        """One probe per attribute of ``labels`` (empty labels skipped; rare classes dropped)."""
        from scipy.optimize import minimize

        x_all = np.asarray(vectors, np.float64)
        models = {}
        for name, ys in labels.items():
            y = np.asarray(ys, object)
            classes = sorted(v for v in set(y) if v and int((y == v).sum()) >= min_per_class)
            ok = np.isin(y, classes)
            if len(classes) < 2:
                continue
            x = x_all[ok]
            mean, scale = x.mean(0), x.std(0) + 1e-6
            z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
            onehot = (y[ok][:, None] == np.asarray(classes, object)[None, :]).astype(np.float64)
            d, k = z.shape[1], len(classes)
            penalty = np.ones((d, k)) / (2 * c)
            penalty[-1] = 0.0  # no penalty on the intercepts

            def loss(flat: np.ndarray, z: np.ndarray = z, onehot: np.ndarray = onehot,
                     penalty: np.ndarray = penalty) -> tuple[float, np.ndarray]:
                w = flat.reshape(penalty.shape)
                logits = z @ w
                logits -= logits.max(1, keepdims=True)
                logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
                grad = z.T @ (np.exp(logp) - onehot) + 2 * penalty * w
                return float(-(onehot * logp).sum() + (penalty * w * w).sum()), grad.ravel()

            res = minimize(loss, np.zeros(d * k), jac=True, method="L-BFGS-B", options={"maxiter": 500})
            models[name] = (classes, mean, scale, res.x.reshape(d, k))
        return cls(models)

    def predict(self, embedding: np.ndarray) -> dict[str, str]:
        """``{attribute: class}`` for one embedding."""
        e = np.asarray(embedding, np.float64).reshape(-1)
        out = {}
        for name, (classes, mean, scale, w) in self.models.items():
            z = np.append((e - mean) / scale, 1.0)
            out[name] = classes[int(np.argmax(z @ w))]
        return out


def reader_accuracy(reader: AudioReader, vectors: np.ndarray, rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """How well the embedding readings match real tracks' metadata: accuracy and balanced.

    ``rows`` should be tracks the probes were not fitted on (another split). The rule readings
    of mode and tempo need the audio and are not scored here (benchmarks/RESULTS.md has them).
    """
    got = [reader.read_embedding(v) for v in np.asarray(vectors, np.float32)]
    want = [_metadata_attributes(r) for r in rows]
    out: dict[str, dict[str, float]] = {}
    for k in got[0] if got else {}:
        pairs = [(w[k], g[k]) for w, g in zip(want, got, strict=True) if w.get(k)]
        if not pairs:
            continue
        classes = sorted({w for w, _ in pairs})
        recall = [np.mean([g == c for w, g in pairs if w == c]) for c in classes]
        out[k] = {"accuracy": float(np.mean([w == g for w, g in pairs])),
                  "balanced": float(np.mean(recall)), "tracks": len(pairs),
                  "reader": "probe" if reader.probes is not None and k in reader.probes.models else "zero-shot"}
    return out


def _resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return x
    from scipy.signal import resample_poly

    g = np.gcd(sr, target)
    return resample_poly(x, target // g, sr // g).astype(np.float32)


def score_attributes(c: Candidate) -> dict[str, str]:
    """What the generated score says: meter class, KK mode of the melody, tempo, ensemble."""
    from generation.generators.symbolic_render import score_mode
    from retrieval.captions import meter_class

    cond = c.conditioning
    return {"meter": meter_class(c.score["meter"]) or "", "mode": score_mode(c.score),
            "tempo_class": str(cond.get("tempo_class", "")), "ensemble": str(cond.get("ensemble", ""))}


def _metadata_attributes(r: Row) -> dict[str, str]:
    from retrieval.captions import meter_class, mode_family, tempo_bucket

    return {"meter": meter_class(r.get("meter")) or "", "mode": mode_family(r.get("mode")) or "",
            "tempo_class": tempo_bucket(r["tempo_bpm"]) if r.get("tempo_bpm") else "",
            "ensemble": str(r.get("ensemble") or "")}


# ---------------------------------------------------------------------- distances

def kad(x: np.ndarray, y: np.ndarray) -> float:
    """Kernel audio distance: unbiased MMD² (x100) with a Gaussian kernel.

    The bandwidth is the median pairwise distance of the pooled sets (NaN when a set has fewer than 2 rows).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    z = np.vstack([x, y])
    d2 = np.maximum(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1), 0.0)
    iu = np.triu_indices(len(z), 1)
    bw = float(np.median(np.sqrt(d2[iu]))) or 1.0
    k = np.exp(-d2 / (2 * bw * bw))
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    mmd = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
           - 2 * kxy.mean())
    return float(100.0 * mmd)


def mean_pairwise_distance(v: np.ndarray) -> float:
    """Mean ``1 - cos`` over pairs (NaN for fewer than two)."""
    v = np.asarray(v, np.float64)
    if len(v) < 2:
        return float("nan")
    s = v @ v.T
    iu = np.triu_indices(len(v), 1)
    return float(np.mean(1.0 - s[iu]))


# ---------------------------------------------------------------------- n-gram baseline

class NgramMelodyModel:
    """Second-order Markov chain over (interval, duration) pairs of corpus melodies.

    The classic symbolic baseline: it knows local melodic habits and nothing of the query,
    of the embedding space, or of form. Pitches are kept in a two-octave window around the
    start, the way folk melodies stay in their range.
    """

    def __init__(self, melodies: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> None:
        self.table: dict[tuple[Any, Any], list[tuple[int, float]]] = {}
        self.starts: list[tuple[tuple[int, float], tuple[int, float]]] = []
        for pitch, dur in melodies:
            if len(pitch) < 4:
                continue
            tok = [(int(pitch[i + 1] - pitch[i]), float(dur[i])) for i in range(len(pitch) - 1)]
            self.starts.append((tok[0], tok[1]))
            for a, b, c in zip(tok, tok[1:], tok[2:], strict=False):
                self.table.setdefault((a, b), []).append(c)
        if not self.starts:
            raise ValueError("the n-gram model needs melodies of at least four notes")

    def sample(self, length_ql: float, seed: int, bar_ql: float = 4.0) -> Events:
        """A melody of at least ``length_ql`` quarter notes, from a corpus opening."""
        rng = np.random.default_rng(seed)
        a, b = self.starts[int(rng.integers(len(self.starts)))]
        pitch, onset, durs, t, p = [72], [0.0], [], 0.0, 72
        for tok in (a, b):
            p = int(np.clip(p + tok[0], 60, 84))
            durs.append(tok[1])
            t += tok[1]
            pitch.append(p)
            onset.append(t)
        while t < length_ql:
            nxt = self.table.get((a, b))
            c = nxt[int(rng.integers(len(nxt)))] if nxt else self.starts[int(rng.integers(len(self.starts)))][0]
            p = int(np.clip(p + c[0], 60, 84))
            durs.append(c[1])
            t += c[1]
            pitch.append(p)
            onset.append(t)
            a, b = b, c
        durs.append(1.0)
        n = len(pitch)
        return Events(onset=np.array(onset), dur=np.maximum(np.array(durs), 0.125),
                      pitch=np.array(pitch, np.int16), voice=np.zeros(n, np.int16),
                      strength=np.zeros(n, np.float32), length_ql=float(t + 1.0), n_voices=1,
                      bar_ql=bar_ql, beat_ql=1.0)


def corpus_melodies(n: int, seed: int = 0) -> list[Events]:
    """Top voices of ``n`` corpus pieces (random, seeded), for the n-gram model and the stats."""
    from generation.symbolic.corpus import list_sources
    from generation.symbolic.render import load_score, score_to_events

    sources = list_sources()
    order = np.random.default_rng(seed).permutation(len(sources))
    out: list[Events] = []
    for i in order:
        if len(out) >= n:
            break
        s = sources[int(i)]
        try:
            ev = score_to_events(load_score(_corpus_path(s.path), s.abc))
        except Exception as e:  # a few corpus files do not parse; the model needs a sample
            log.debug("skip %s: %s", s.piece_id, e)
            continue
        top = ev.voice == 0
        if top.sum() >= 8:
            out.append(ev)
    return out


def _corpus_path(rel: str) -> Any:
    from generation.symbolic.corpus import corpus_root

    return corpus_root() / rel


def _melody_pairs(ev: Events) -> tuple[np.ndarray, np.ndarray]:
    top = np.flatnonzero(ev.voice == 0)
    order = top[np.argsort(ev.onset[top], kind="stable")]
    on = ev.onset[order]
    first = np.append(True, np.diff(on) > 1e-6)
    order = order[first]
    on = ev.onset[order]
    dur = np.append(np.diff(on), ev.dur[order][-1] if len(order) else 1.0)
    return ev.pitch[order].astype(np.int64), np.round(np.maximum(dur, 0.125) * 12) / 12


def _crossfade(path_a: str | None, path_b: str | None, sr: int, seconds: float) -> np.ndarray | None:
    """A's first half fading (over 2 s) into B's second half, ``seconds`` long, mono at ``sr``."""
    import soundfile as sf

    try:
        a, sa = sf.read(str(path_a), dtype="float32", always_2d=True)
        b, sb = sf.read(str(path_b), dtype="float32", always_2d=True)
    except Exception as e:  # a moved source file: the baseline skips this pair
        log.debug("crossfade skipped: %s", e)
        return None
    a, b = _resample(a.mean(1), sa, sr), _resample(b.mean(1), sb, sr)
    n = int(seconds * sr)
    a, b = np.resize(a, n), np.resize(b, n)
    fade = int(2 * sr)
    mid = n // 2
    w = np.clip((np.arange(n) - (mid - fade // 2)) / fade, 0.0, 1.0).astype(np.float32)
    return (1 - w) * a + w * b
