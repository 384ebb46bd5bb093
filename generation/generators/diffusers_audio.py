"""What the diffusers backends share: batched candidates with one seed each, and their record.

AudioLDM2 and Stable Audio differ in how a pipeline is loaded and called; everything around the
call -- batching, one ``torch.Generator`` per candidate, mono at the exact length, the lock,
the conditioning record -- is the same and lives here once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from generation.errors import GenerationError
from generation.generators.base import Candidate, GenerationRequest
from generation.generators.common import (
    check_tokenizer,
    targets_note,
    to_mono,
    torch_generators,
    weights_id,
)


class DiffusersAudioGenerator:
    """Base of the diffusers backends: subclasses load ``pipe`` and implement :meth:`_call`.

    Attributes:
        pipe: the loaded diffusers pipeline (on ``device``, progress bar off).
        sample_rate: the pipeline's output rate.
        weights_id: ``<directory>@<12 hex>`` over every weight file.
    """

    id: str
    pipe: Any
    sample_rate: int
    weights_id: str
    device: torch.device

    def _setup(self, pipe: Any, path: Path, sample_rate: int, num_inference_steps: int,
               guidance_scale: float, negative_prompt: str | None, batch_size: int) -> None:
        if num_inference_steps < 1 or batch_size < 1:
            raise GenerationError(f"num_inference_steps and batch_size must be >= 1, got "
                                  f"{num_inference_steps}, {batch_size}")
        for name in ("tokenizer", "tokenizer_2"):  # the silent all-UNK tokenizer, caught here
            if getattr(pipe, name, None) is not None:
                check_tokenizer(getattr(pipe, name), path / name)
        self.pipe = pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.sample_rate = sample_rate
        self.num_inference_steps, self.guidance_scale = num_inference_steps, guidance_scale
        self.negative_prompt, self.batch_size = negative_prompt, batch_size
        self.path = path
        self.weights_id = weights_id(path)
        self._lock = threading.Lock()  # a pipeline's scheduler holds per-call state

    def _call(self, prompts: list[str], negative: list[str] | None,
              generators: list[torch.Generator], duration_s: float) -> torch.Tensor:
        """One pipeline call: ``[b, samples]`` or ``[b, channels, samples]`` audio."""
        raise NotImplementedError

    def _check(self, request: GenerationRequest) -> None:
        """Raise :class:`GenerationError` for a request past the model's limits."""

    def generate(self, request: GenerationRequest) -> list[Candidate]:
        """Make ``request.n_candidates`` candidates of ``request.duration_s`` each.

        Returns:
            Candidates in seed order; audio float32 mono at :attr:`sample_rate`, exactly
            ``round(duration_s * sample_rate)`` samples.

        Raises:
            GenerationError: a request past the model's limits, or one the pipeline's own
                input checks refuse (its message is kept).
        """
        self._check(request)
        prompt = request.prompt()
        n_samples = round(request.duration_s * self.sample_rate)
        conditioning = self._conditioning(request, prompt)
        seeds = request.seeds()
        out: list[Candidate] = []
        for i in range(0, len(seeds), self.batch_size):
            chunk = seeds[i:i + self.batch_size]
            negative = None if self.negative_prompt is None else [self.negative_prompt] * len(chunk)
            try:
                with self._lock, torch.inference_mode():
                    audios = self._call([prompt] * len(chunk), negative,
                                        torch_generators(chunk, self.device), request.duration_s)
            except ValueError as e:
                raise GenerationError(f"{self.id} cannot make this request: {e}") from e
            out += [Candidate(to_mono(a, n_samples), self.sample_rate, None, dict(conditioning),
                              self.id, s, self.weights_id) for a, s in zip(audios, chunk, strict=True)]
        return out

    def _conditioning(self, request: GenerationRequest, prompt: str) -> dict[str, Any]:
        return {
            "prompt": prompt,
            "text": request.text,
            "attributes": dict(request.attributes),
            "target_embeddings": targets_note(request),
            "negative_prompt": self.negative_prompt,
            "guidance_scale": self.guidance_scale,
            "num_inference_steps": self.num_inference_steps,
            "scheduler": type(self.pipe.scheduler).__name__,
        }
