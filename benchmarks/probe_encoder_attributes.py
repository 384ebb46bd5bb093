"""Linear probes: how much metre, mode and tempo an encoder's audio embeddings hold, linearly.

Zero-shot accuracy (eval-encoder) measures audio *and* its alignment with words; a probe
measures the audio side alone. Logistic regression, 5 folds grouped by piece (no piece in both
train and test of a fold), on the cached suite sets of ``eval-encoder --suite v2`` (run that
first). Prints balanced accuracy per set, encoder and attribute.

    python -m benchmarks.probe_encoder_attributes [--weights W ...] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Piece-grouped 5-fold balanced accuracy of a logistic-regression probe."""
    from sklearn.linear_model import LogisticRegression

    from retrieval.evaluation.metrics import balanced_accuracy

    classes = sorted(set(y.tolist()))
    pred = np.empty(len(y), dtype=object)
    for g in range(5):
        tr, te = groups != g, groups == g
        if te.any() and len(set(y[tr].tolist())) > 1:
            pred[te] = LogisticRegression(max_iter=2000).fit(x[tr], y[tr]).predict(x[te])
    ok = np.array([p is not None for p in pred])
    return balanced_accuracy(np.array([classes.index(v) for v in y[ok]]),
                             np.array([classes.index(v) for v in pred[ok]]))


def main() -> None:
    """Probe every cached suite set for each encoder given."""
    from api.encoder_jobs import audio_embeddings_from_features
    from generation.demo.training_data import FeatureSet
    from retrieval.encoders.default import WEIGHTS_DIR, DefaultEncoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", nargs="*", type=Path,
                    default=[WEIGHTS_DIR / "clap-mini.safetensors"])
    ap.add_argument("--cache", type=Path, default=Path("var/encoder-data"))
    args = ap.parse_args()
    for path in sorted(args.cache.glob("suite-*.npz")):
        fs = FeatureSet.load(path)
        groups = np.array([int(hashlib.sha256(r["piece_id"].encode()).hexdigest()[:8], 16) % 5
                           for r in fs.rows])
        for w in args.weights:
            enc = DefaultEncoder(w, device="cpu")
            audio = audio_embeddings_from_features(enc.model, fs)
            parts = []
            for attr in ("meter_class", "mode_family", "tempo_bucket"):
                y = np.array([r.get(attr) or "" for r in fs.rows])
                keep = y != ""
                parts.append(f"{attr} {probe(audio[keep], y[keep], groups[keep]):.3f}")
            print(f"{path.stem:28s} {enc.id}  " + " | ".join(parts))


if __name__ == "__main__":
    main()
