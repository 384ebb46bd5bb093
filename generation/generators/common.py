"""Helpers every torch generator backend shares: device and dtype, weights ids, seeds, audio.

Kept out of ``base.py`` because they need torch, and ``base.py`` must import without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from generation.errors import GenerationError, GeneratorUnavailable, GeneratorWeightsNotFound
from generation.generators.base import GenerationRequest
from retrieval.encoders.common import weights_digest

T = TypeVar("T")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
TOKENIZER_PROBE = "a slow waltz for accordion in a minor key"


def resolve_device(device: str) -> torch.device:
    """Map ``"auto" | "cpu" | "cuda[:n]"`` to a torch device (``auto``: CUDA when present).

    Raises:
        GenerationError: an unknown device, or CUDA asked for where there is none.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise GenerationError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GenerationError(f"device={device!r} was asked for but CUDA is not available")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``"auto"``: float16 on CUDA (half the memory, tensor cores), float32 on CPU.

    Why not fp16 on CPU: most CPU kernels have no half path (slow or missing), and bf16 changes
    the audio of these checkpoints audibly at the few steps CPU runs afford.

    Raises:
        GenerationError: a dtype other than ``auto``, ``float32``, ``float16``, ``bfloat16``.
    """
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in names:
        raise GenerationError(f"dtype must be 'auto' or one of {sorted(names)}, got {dtype!r}")
    return names[dtype]


def weights_id(path: Path) -> str:
    """``<directory name>@<12 hex>``: sha256 over every weight file under ``path``.

    Files are taken in sorted relative-path order, so the id does not depend on the file
    system's listing order. Configs are left out: the one that changes the audio without
    changing weights, the scheduler's, is recorded in each candidate's conditioning instead.
    """
    files = sorted((f for f in path.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES),
                   key=lambda f: f.relative_to(path).as_posix())
    return f"{path.resolve().name}@{weights_digest(files)}"


def torch_generators(seeds: list[int], device: torch.device) -> list[torch.Generator]:
    """One generator per candidate, so candidate ``i`` depends on its own seed only."""
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


def to_mono(audio: Any, n_samples: int) -> np.ndarray:
    """A ``[channels, samples]`` or ``[samples]`` array -> float32 mono of exactly ``n_samples``.

    Channels are averaged (stereo checkpoints); a waveform a few samples short (frame
    rounding) is zero-padded, a longer one cut.
    """
    a = audio.detach().float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    a = a.astype(np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise GenerationError(f"expected [channels, samples] audio, got shape {a.shape}")
    if a.size < n_samples:
        a = np.pad(a, (0, n_samples - a.size))
    return np.ascontiguousarray(a[:n_samples], dtype=np.float32)


def check_tokenizer(tokenizer: Any, where: Path) -> None:
    """Fail loudly on a tokenizer that maps plain English to unknown tokens only.

    transformers 5 can build an all-UNK tokenizer silently when vocabulary files are missing
    or mismatched; a text-conditioned generator would then ignore every prompt.

    Raises:
        GeneratorWeightsNotFound: the probe sentence tokenises to unknown/special ids only.
    """
    ids = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    if not ids or (unk is not None and all(i == unk for i in ids)):
        raise GeneratorWeightsNotFound(
            f"the tokenizer in {where} maps {TOKENIZER_PROBE!r} to unknown tokens only ({ids}): "
            f"its vocabulary files are missing or belong to another model.")


def load_or_explain(what: str, path: Path, extra: str, fn: Callable[[], T]) -> T:
    """Run a ``from_pretrained`` call, turning its errors into the package's errors.

    Raises:
        GeneratorUnavailable: an ImportError (e.g. the scheduler needs ``torchsde``), naming
            the extra to install.
        GeneratorWeightsNotFound: an OSError/ValueError/KeyError from loading (bad or partial
            files), with the path.
    """
    try:
        return fn()
    except ImportError as e:
        raise GeneratorUnavailable(
            f"cannot load {what} from {path}: {e}. Install the extra: "
            f"pip install 'tunescope[{extra}]'") from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GeneratorWeightsNotFound(f"cannot load {what} from {path}: {e}") from e


@contextmanager
def seeded(seed: int, device: torch.device, lock: threading.Lock) -> Iterator[None]:
    """Seed torch's global RNG for one call without disturbing anyone else's stream.

    For models whose sampling draws from the global RNG (``transformers``' ``generate``): the
    state is forked and restored, and the lock keeps two threads from seeding at once.
    """
    cuda = device.type == "cuda"
    fork = torch.random.fork_rng(devices=[device] if cuda else [], device_type="cuda" if cuda else None)
    with lock, fork:
        torch.manual_seed(seed)
        yield


def targets_note(request: GenerationRequest) -> dict[str, Any] | None:
    """How a text-conditioned backend used the prior's samples: not as conditioning."""
    if request.target_embeddings is None:
        return None
    k, d = request.target_embeddings.shape
    return {"count": k, "dim": d, "used_for": "re-ranking only (the model is conditioned on text)"}
