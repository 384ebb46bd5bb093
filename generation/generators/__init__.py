"""Music generators behind one protocol; backends are imported only when loaded.

This module must stay light: it imports neither torch nor any backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generation.generators.base import Candidate, GenerationRequest, Generator

__all__ = ["Candidate", "GenerationRequest", "Generator", "load_generator"]


def load_generator(name: str = "symbolic", path: str | Path | None = None, device: str = "auto",
                   **kwargs: Any) -> Generator:
    """Build a registered generator; see :func:`generation.generators.registry.load_generator`."""
    from generation.generators.registry import load_generator as _load

    return _load(name, path=path, device=device, **kwargs)
