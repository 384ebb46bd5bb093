"""Which hand-made rhythm features carry metre across renderers? A transfer probe.

The linear probe of the encoders' embeddings (``probe_encoder_attributes``) found that neither
audio tower holds metre (balanced accuracy 0.41-0.48 for three classes). This asks the question
one step earlier, on the feature families themselves: a classifier is fitted on the
in-distribution suite set (training soundfonts, render variety, production chain) and scored
on the two held-out sets (an unseen soundfont; FluidSynth + MuseScore deadpan piano), grouped
by piece so no piece is in both. A family that transfers is worth feeding the encoder.

Families:
- ``v1``: the encoder's v1 rhythm input (onset-strength autocorrelation, density, beat-relative);
- ``v2``: v1 plus the accent-free onset train, tempogram and subdivision ratios;
- ``pitch``: the same periodicity analysis of a *pitch-change* envelope (positive chroma
  change between frames), which marks note changes a legato instrument's spectral flux misses;
- ``beatspec``: Foote's beat spectrum, the mean cosine self-similarity of chroma frames and of
  mel frames at each lag, and its values at multiples of the beat period: a repeated bar of
  melody or of rhythm shows up whatever the accents;
- ``ratio``: tempo-invariant ratio maps (:func:`ratio_map`) of four periodicity curves (onset
  strength, onset train, onset-or-pitch-change train, chroma beat spectrum);
- combinations.

    python -m benchmarks.probe_rhythm_features [--cache var/encoder-data] [--model lr|hgb]

Run ``tunescope eval-encoder --suite v2`` first (it writes the cached suite sets).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch

from retrieval.encoders.rhythm import pitch_change_envelope


def beat_spectrum(frames: torch.Tensor, max_lag: int = 150, min_lag: int = 5) -> torch.Tensor:
    """Mean cosine similarity of frames ``[B, C, T]`` at lags ``min_lag..max_lag`` ``[B, L]``.

    Normalised by its mean over lags, so it is a profile (which lags repeat more), not a level.
    """
    x = frames - frames.mean(-1, keepdim=True)
    x = x / (x.norm(dim=1, keepdim=True) + 1e-6)
    t = x.shape[-1]
    out = []
    for lag in range(min_lag, max_lag):
        out.append((x[:, :, :t - lag] * x[:, :, lag:]).sum(1).mean(-1))
    b = torch.stack(out, 1)
    return b - b.mean(-1, keepdim=True)


RATIOS = (4 / 3, 3 / 2, 2.0, 3.0, 4.0, 6.0)
LAG_BANDS = ((5, 12), (12, 25), (25, 50))


def peak_enhance(ac: torch.Tensor, width: int = 4) -> torch.Tensor:
    """Autocorrelation minus its local mean (``2 * width + 1`` lags), positive part: the peaks."""
    pad = torch.nn.functional.pad(ac[:, None], (width, width), mode="replicate")
    local = torch.nn.functional.avg_pool1d(pad, 2 * width + 1, stride=1)[:, 0]
    return torch.relu(ac - local)


def ratio_map(ac: torch.Tensor) -> torch.Tensor:
    """Tempo-invariant metre evidence ``[B, bands x ratios]`` from an autocorrelation ``[B, T]``.

    For base periods ``L`` in each band, ``sum_L p(L) p(rL) / sum_L p(L)^2`` where ``p`` is the
    peak-enhanced autocorrelation: how strongly a periodicity at ``L`` comes with one at ``r``
    times it. Compound metre stacks a 3 on a fast period (eighths in threes) and a 2 above it;
    simple triple stacks the 3 on a slower one (beats in threes); duple stacks 2s and 4s. The
    ratio, not the tempo, is what a rendition by another tool keeps.
    """
    p = peak_enhance(ac)
    n = p.shape[-1]
    out = []
    for lo, hi in LAG_BANDS:
        base = torch.arange(lo, hi)
        pl = p[:, base]
        den = (pl ** 2).sum(-1) + 1e-6
        for r in RATIOS:
            idx = (base.float() * r).round().long()
            ok = idx < n
            num = (pl[:, ok] * p[:, idx[ok]]).sum(-1)
            out.append(num / den)
        out.append(torch.log(den))
    return torch.stack(out, 1)


def features(fs, family: str, window_s: float = 10.0) -> np.ndarray:
    """The named feature family for every render of a FeatureSet, ``[N, F]``.

    Computed on ``window_s`` windows (10 s: the encoder's) with a half-window hop, and
    averaged, as the encoder averages its window embeddings; ``window_s`` 20 takes the whole
    stored clip at once (does longer context carry metre?).
    """
    from retrieval.encoders.features import frames_for

    t = fs.onset.shape[-1]
    width = min(t, frames_for(window_s))
    starts = list(range(0, t - width + 1, max(1, width // 2))) or [0]
    return np.mean([_features(fs, family, s, s + width) for s in starts], 0)


def _features(fs, family: str, a: int, b: int) -> np.ndarray:
    from retrieval.encoders.default import _rhythm_features
    from retrieval.encoders.rhythm import (
        autocorrelation,
        onset_train,
        rhythm_v2_features,
        rhythm_v3_features,
        subdivision_ratios,
    )

    out = []
    for s in range(0, len(fs.rows), 64):
        onset = torch.from_numpy(fs.onset[s:s + 64, a:b].astype(np.float32))
        chroma = torch.from_numpy(fs.chroma[s:s + 64, :, a:b].astype(np.float32))
        mel = torch.from_numpy(fs.logmel[s:s + 64, :, a:b].astype(np.float32))
        parts = []
        for name in family.split("+"):
            if name == "v1":
                parts.append(_rhythm_features(onset))
            elif name == "v2":
                parts.append(torch.cat([_rhythm_features(onset), rhythm_v2_features(onset)], 1))
            elif name == "pitch":
                parts.append(rhythm_v3_features(chroma))  # the encoder's rhythm=3 input
            elif name == "beatspec":
                bc = beat_spectrum(chroma[:, :12])
                bm = beat_spectrum(mel)
                # beat-relative samples of both, at the onset train's beat candidates
                ac_c = torch.nn.functional.pad(bc, (5, 0))
                ac_m = torch.nn.functional.pad(bm, (5, 0))
                parts.append(torch.cat([bc, bm, subdivision_ratios(ac_c), subdivision_ratios(ac_m)], 1))
            elif name == "ratio":
                train = onset_train(onset)
                pitch = onset_train(pitch_change_envelope(chroma), floor=0.15)
                both = torch.clamp(train + pitch, max=1.0)
                smooth = lambda x: torch.nn.functional.avg_pool1d(x[:, None], 3, 1, 1)[:, 0]  # noqa: E731
                accs = [autocorrelation(onset), autocorrelation(smooth(train)), autocorrelation(smooth(both)),
                        torch.nn.functional.pad(beat_spectrum(chroma[:, :12], max_lag=400, min_lag=1), (1, 0))]
                parts.append(torch.cat([ratio_map(a) for a in accs], 1))
            else:
                raise ValueError(name)
        out.append(torch.cat(parts, 1).numpy())
    return np.nan_to_num(np.concatenate(out))


def make_clf(model: str):
    """A fresh classifier: standardised logistic regression, or gradient-boosted trees."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "hgb":
        return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                              class_weight="balanced")
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1, class_weight="balanced"))


def main() -> None:
    """Fit on in-distribution, score on each held-out set, per family and attribute."""
    from generation.demo.training_data import FeatureSet
    from retrieval.evaluation.metrics import balanced_accuracy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("var/encoder-data"))
    ap.add_argument("--families", nargs="*",
                    default=["v1", "v2", "pitch", "beatspec", "ratio", "v2+pitch", "v2+beatspec",
                             "v2+pitch+beatspec", "v1+ratio"])
    ap.add_argument("--attr", default="meter_class")
    ap.add_argument("--model", choices=("lr", "hgb"), default="lr")
    ap.add_argument("--window-s", type=float, default=10.0, help="feature window (20: the whole clip)")
    ap.add_argument("--train-set", default=None,
                    help="fit on this cached set instead (e.g. train-v2: 3,834 renders of train-split "
                         "pieces, disjoint from the suite's test pieces) and score every suite set whole")
    args = ap.parse_args()
    if args.train_set:
        _probe_disjoint(args)
        return
    sets = {p.stem.removeprefix("suite-"): FeatureSet.load(p) for p in sorted(args.cache.glob("suite-*.npz"))}
    train = sets.pop("in-distribution")
    y_tr = np.array([r.get(args.attr) or "" for r in train.rows])
    held = {n: (fs, np.array([r.get(args.attr) or "" for r in fs.rows])) for n, fs in sets.items()}
    print(f"{args.attr}: train {len(y_tr)} renders; classes {sorted(set(y_tr) - {''})}")
    for fam in args.families:
        x_tr = features(train, fam, args.window_s)
        keep = y_tr != ""
        # in-distribution figure: piece-grouped 5-fold on the training set itself
        groups = np.array([int(hashlib.sha256(r["piece_id"].encode()).hexdigest()[:8], 16) % 5 for r in train.rows])
        pred = np.empty(len(y_tr), dtype=object)
        for g in range(5):
            tr, te = keep & (groups != g), keep & (groups == g)
            clf = make_clf(args.model)
            pred[te] = clf.fit(x_tr[tr], y_tr[tr]).predict(x_tr[te])
        classes = sorted(set(y_tr[keep].tolist()))
        cv = balanced_accuracy(np.array([classes.index(v) for v in y_tr[keep]]),
                               np.array([classes.index(v) for v in pred[keep]]))
        line = [f"{fam:22s} dim {x_tr.shape[1]:4d}  in-dist(cv) {cv:.3f}"]
        for name, (fs, y) in held.items():
            # every suite set renders the same test pieces, so fit on 4/5 of the pieces
            # (in-distribution renders) and score the held-out renders of the other 1/5
            g_te = np.array([int(hashlib.sha256(r["piece_id"].encode()).hexdigest()[:8], 16) % 5 for r in fs.rows])
            x = features(fs, fam, args.window_s)
            p = np.empty(len(y), dtype=object)
            for g in range(5):
                tr = keep & (groups != g)
                te = (y != "") & (g_te == g)
                c = make_clf(args.model)
                p[te] = c.fit(x_tr[tr], y_tr[tr]).predict(x[te])
            ok = y != ""
            ba = balanced_accuracy(np.array([classes.index(v) for v in y[ok]]),
                                   np.array([classes.index(v) for v in p[ok]]))
            line.append(f"{name} {ba:.3f}")
        print("  ".join(line), flush=True)


def _probe_disjoint(args: argparse.Namespace) -> None:
    """Fit on a training-split cache, score each suite set (test pieces: no piece in both)."""
    from generation.demo.training_data import FeatureSet
    from retrieval.evaluation.metrics import balanced_accuracy

    train = FeatureSet.load(args.cache / f"{args.train_set}.npz")
    sets = {p.stem.removeprefix("suite-"): FeatureSet.load(p) for p in sorted(args.cache.glob("suite-*.npz"))}
    y_tr = np.array([r.get(args.attr) or "" for r in train.rows])
    keep = y_tr != ""
    classes = sorted(set(y_tr[keep].tolist()))
    print(f"{args.attr}: fit on {args.train_set} ({int(keep.sum())} renders); classes {classes}")
    for fam in args.families:
        clf = make_clf(args.model).fit(features(train, fam, args.window_s)[keep], y_tr[keep])
        line = [f"{fam:22s}"]
        for name, fs in sets.items():
            y = np.array([r.get(args.attr) or "" for r in fs.rows])
            ok = y != ""
            p = clf.predict(features(fs, fam, args.window_s)[ok])
            ba = balanced_accuracy(np.array([classes.index(v) for v in y[ok]]), np.array([classes.index(v) for v in p]))
            line.append(f"{name} {ba:.3f}")
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
