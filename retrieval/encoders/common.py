"""Helpers every torch encoder backend shares: device choice, weight ids, analysis windows.

Kept out of ``base.py`` because they need torch, and ``base.py`` must import without it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch

from retrieval.errors import RetrievalError


def resolve_device(device: str) -> torch.device:
    """Map ``"auto" | "cpu" | "cuda"`` to a torch device (``auto``: CUDA when present)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise RetrievalError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RetrievalError(f"device={device!r} was asked for but CUDA is not available")
    return torch.device(device)


def weights_digest(files: Sequence[Path]) -> str:
    """First 12 hex digits of the sha256 over the given files' bytes, in the order given.

    Why: an encoder ``id`` must change whenever the weights change, so stored embeddings are
    never compared with queries from different weights.
    """
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of the analysis windows of a waveform of ``n_samples``.

    Windows of ``window`` samples every ``hop`` samples; a final window aligned to the end is
    added when the regular grid would leave the tail uncovered. A waveform no longer than one
    window gets a single window at 0 (the feature extractor pads it).
    """
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts
