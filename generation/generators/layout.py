"""What a real backend's weights directory must hold, checked before anything heavy loads.

Pure data and ``pathlib``: the registry checks a directory with it before importing torch, so
a wrong ``TUNESCOPE_GENERATOR_PATH`` is reported in milliseconds with the list of what is
missing and where to get it, instead of as a traceback from deep inside ``from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generation.errors import GeneratorWeightsNotFound

_WEIGHTS = ("*.safetensors", "*.bin")


def _model(folder: str) -> tuple[str, ...]:
    """A diffusers pipeline component with weights: its config and any weight file."""
    return (f"{folder}/config.json",)


@dataclass(frozen=True)
class Layout:
    """The files a checkpoint directory needs.

    Attributes:
        kind: what the directory is, in words (used in the error message).
        checkpoints: the real checkpoints that fit, best first (``org/name`` on the hub).
        required: each entry is a tuple of alternative glob patterns relative to the
            directory; at least one must match a file.
    """

    kind: str
    checkpoints: tuple[str, ...]
    required: tuple[tuple[str, ...], ...]

    def missing(self, path: Path) -> list[str]:
        """The required entries with no matching file (each as ``"a or b"``)."""
        return [" or ".join(alts) for alts in self.required
                if not any(next(path.glob(p), None) is not None for p in alts)]


def _pipeline(folders_with_weights: tuple[str, ...], extra: tuple[tuple[str, ...], ...]
              ) -> tuple[tuple[str, ...], ...]:
    req: list[tuple[str, ...]] = [("model_index.json",)]
    for f in folders_with_weights:
        req.append(_model(f))
        req.append(tuple(f"{f}/{w}" for w in _WEIGHTS))
    return (*req, *extra)


LAYOUTS: dict[str, Layout] = {
    "musicgen": Layout(
        "a transformers MusicGen checkpoint (MusicgenForConditionalGeneration + its processor)",
        ("facebook/musicgen-small", "facebook/musicgen-medium", "facebook/musicgen-large",
         "facebook/musicgen-stereo-small"),
        (("config.json",), _WEIGHTS, ("tokenizer.json", "spiece.model"),
         ("preprocessor_config.json", "processor_config.json"))),
    "audioldm2": Layout(
        "a diffusers AudioLDM2Pipeline directory",
        ("cvssp/audioldm2-music", "cvssp/audioldm2", "cvssp/audioldm2-large"),
        _pipeline(("vae", "unet", "text_encoder", "text_encoder_2", "language_model",
                   "projection_model", "vocoder"),
                  (("scheduler/scheduler_config.json",),
                   ("tokenizer/tokenizer.json", "tokenizer/vocab.json"),
                   ("tokenizer_2/tokenizer.json", "tokenizer_2/spiece.model"),
                   ("feature_extractor/preprocessor_config.json",)))),
    "stable-audio": Layout(
        "a diffusers StableAudioPipeline directory",
        ("stabilityai/stable-audio-open-1.0", "stabilityai/stable-audio-open-small"),
        _pipeline(("transformer", "vae", "text_encoder", "projection_model"),
                  (("scheduler/scheduler_config.json",),
                   ("tokenizer/tokenizer.json", "tokenizer/spiece.model")))),
}


def check_layout(name: str, path: str | Path | None) -> Path:
    """The weights directory of generator ``name``, after checking it holds what it needs.

    Returns:
        ``path`` as an expanded :class:`~pathlib.Path`.

    Raises:
        GeneratorWeightsNotFound: no path, no such directory, or files missing (all named),
            with the checkpoints that fit and how to fetch one on another machine.
    """
    layout = LAYOUTS[name]
    if path is None:
        raise GeneratorWeightsNotFound(
            f"generator {name!r} needs a path to {layout.kind}: set TUNESCOPE_GENERATOR_PATH "
            f"(or pass path=) to a directory holding e.g. {layout.checkpoints[0]}. "
            f"See docs/generators.md.")
    p = Path(path).expanduser()
    missing = ["the directory itself"] if not p.is_dir() else layout.missing(p)
    if missing:
        raise GeneratorWeightsNotFound(
            f"{name} weights not found in {p}: missing {'; '.join(missing)}. Expected "
            f"{layout.kind} saved by save_pretrained (one of: {', '.join(layout.checkpoints)}). "
            f"Nothing is downloaded automatically: on a machine with network access run "
            f"`huggingface-cli download {layout.checkpoints[0]} --local-dir DIR`, copy DIR "
            f"here and point TUNESCOPE_GENERATOR_PATH at it. See docs/generators.md.")
    return p
