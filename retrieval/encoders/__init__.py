"""Text-audio encoders behind one protocol; backends are imported only when loaded.

This module must stay light: it imports neither torch nor any backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.encoders.base import Encoder, l2_normalize

__all__ = ["Encoder", "l2_normalize", "load_encoder"]


def load_encoder(name: str = "default", path: str | Path | None = None, device: str = "auto",
                 **kwargs: Any) -> Encoder:
    """Build a registered encoder; see :func:`retrieval.encoders.registry.load_encoder`."""
    from retrieval.encoders.registry import load_encoder as _load

    return _load(name, path=path, device=device, **kwargs)
