"""Generator names -> implementations, imported only when asked for.

Why lazy: a real backend pulls torch, transformers and diffusers (seconds, hundreds of MB);
code that only lists generators or reads a stored candidate must not pay for that.

Registered backends:

- ``symbolic``: the embedded default (offline, CPU, fast): a symbolic model over note events,
  conditioned on the encoder's audio-embedding space, rendered through the soundfont renderer.
  Registered ahead of its module; until ``generation/generators/symbolic.py`` exists, loading it
  raises :class:`GeneratorUnavailable` saying so.
- ``musicgen``: MusicGen through ``transformers`` (:mod:`generation.generators.musicgen`).
- ``audioldm2``: AudioLDM2 through ``diffusers`` (:mod:`generation.generators.audioldm2`).
- ``stable-audio``: Stable Audio Open through ``diffusers``
  (:mod:`generation.generators.stable_audio`).

Not registered: **MusicLDM**. diffusers has moved ``MusicLDMPipeline`` to
``pipelines/deprecated`` (no fixes, to be removed), and under transformers 5 it breaks on the
CLAP output type (it calls ``.to`` on a ``BaseModelOutputWithPooling``). AudioLDM2-music covers
the same ground and is maintained.

The contract of a backend class: ``cls(path: Path | None, device: str, **kwargs)``, where
``path`` is the weights directory (already checked against :data:`~generation.generators.layout.LAYOUTS`
for the real backends) and ``device`` is ``"auto" | "cpu" | "cuda"``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from generation.errors import GenerationError, GeneratorUnavailable
from generation.generators.base import Generator
from generation.generators.layout import LAYOUTS, check_layout

GENERATORS: dict[str, str] = {
    "symbolic": "generation.generators.symbolic:SymbolicGenerator",
    "musicgen": "generation.generators.musicgen:MusicGenGenerator",
    "audioldm2": "generation.generators.audioldm2:AudioLDM2Generator",
    "stable-audio": "generation.generators.stable_audio:StableAudioGenerator",
}
# The pip extra that brings each backend's packages (pyproject.toml [project.optional-dependencies]).
EXTRAS: dict[str, str] = {
    "musicgen": "gen-hf",
    "audioldm2": "gen-hf",
    "stable-audio": "gen-hf",
}


def load_generator(name: str = "symbolic", path: str | Path | None = None, device: str = "auto",
                   **kwargs: Any) -> Generator:
    """Build the generator registered under ``name``.

    Args:
        name: a key of :data:`GENERATORS`.
        path: the weights: a local directory for the real backends (required); for
            ``symbolic``, ``None`` means its committed weights.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        **kwargs: backend options (e.g. ``num_inference_steps``, ``guidance_scale``, ``dtype``).

    Raises:
        GenerationError: an unknown name.
        GeneratorWeightsNotFound: no path, or the directory lacks files (they are named).
        GeneratorUnavailable: the backend's module is not built yet, or a package it needs is
            missing (the message names the extra to install).
    """
    if name not in GENERATORS:
        raise GenerationError(
            f"unknown generator {name!r}; known generators: {', '.join(sorted(GENERATORS))}")
    if name in LAYOUTS:  # checked first: a wrong path is the common mistake, and cheap to name
        path = check_layout(name, path)
    cls = _import(name)
    return cls(path=path, device=device, **kwargs)


def _import(name: str) -> type:
    module_name, _, class_name = GENERATORS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise GeneratorUnavailable(
                f"generator {name!r} is registered but not built yet: its module {module_name} "
                f"does not exist in this installation. Choose another with TUNESCOPE_GENERATOR "
                f"(one of {', '.join(sorted(set(GENERATORS) - {name}))}).") from e
        raise GeneratorUnavailable(_missing_package(name, module_name, e)) from e
    except ImportError as e:
        raise GeneratorUnavailable(_missing_package(name, module_name, e)) from e
    try:
        return getattr(module, class_name)
    except AttributeError as e:
        raise GeneratorUnavailable(
            f"generator {name!r}: {module_name} has no class {class_name}") from e


def _missing_package(name: str, module_name: str, e: ImportError) -> str:
    extra = EXTRAS.get(name)
    hint = f"install its extra: pip install 'tunescope[{extra}]'" if extra else \
        "reinstall tunescope"
    return (f"generator {name!r} cannot be imported ({module_name}): {e}. The package "
            f"{e.name or 'it needs'} is missing; {hint}.")
