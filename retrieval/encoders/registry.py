"""Encoder names -> implementations, imported only when asked for.

Why lazy: importing a backend pulls torch and transformers (seconds, hundreds of MB); code that
only lists encoders or reads stored vectors must not pay for that.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from retrieval.encoders.base import Encoder
from retrieval.errors import RetrievalError

ENCODERS: dict[str, str] = {
    "default": "retrieval.encoders.default:DefaultEncoder",
    "hf-clap": "retrieval.encoders.hf_clap:HFClapEncoder",
    "laion-clap": "retrieval.encoders.laion_clap:LaionClapEncoder",
}
# Backends whose weights live outside the repo: they cannot guess where, so a path is required.
NEEDS_PATH = {
    "hf-clap": "a directory with a transformers CLAP checkpoint (e.g. laion/clap-htsat-unfused)",
    "laion-clap": "a LAION-CLAP .pt checkpoint (e.g. music_audioset_epoch_15_esc_90.14.pt)",
}


def load_encoder(name: str = "default", path: str | Path | None = None, device: str = "auto",
                 **kwargs: Any) -> Encoder:
    """Build the encoder registered under ``name``.

    Args:
        name: a key of :data:`ENCODERS`.
        path: the weights: ``None`` means the committed weights for ``default``; required for
            ``hf-clap`` (a directory) and ``laion-clap`` (the ``.pt`` file).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        **kwargs: backend-specific options (e.g. ``tokenizer_path`` for ``laion-clap``,
            ``window_s``/``hop_s``/``batch_size`` for the CLAP backends).

    Raises:
        RetrievalError: unknown name, or no path for a backend that needs one.
    """
    if name not in ENCODERS:
        raise RetrievalError(
            f"unknown encoder {name!r}; known encoders: {', '.join(sorted(ENCODERS))}")
    if path is None and name in NEEDS_PATH:
        raise RetrievalError(
            f"encoder {name!r} needs a path to its weights ({NEEDS_PATH[name]}); set "
            f"TUNESCOPE_ENCODER_PATH or pass path=. See docs/encoders.md.")
    module_name, _, class_name = ENCODERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RetrievalError(f"encoder {name!r} cannot be imported ({module_name}): {e}") from e
    cls = getattr(module, class_name)
    if name == "laion-clap":
        return cls(checkpoint=path, device=device, **kwargs)
    return cls(path=path, device=device, **kwargs)
