"""MusicGen through ``transformers``: text -> EnCodec tokens -> audio, from a local directory.

Works with checkpoints saved by ``MusicgenForConditionalGeneration.save_pretrained`` plus its
``MusicgenProcessor`` (``facebook/musicgen-small`` 300 M, ``-medium`` 1.5 B, ``-large`` 3.3 B,
``-stereo-*``). Nothing is fetched: every ``from_pretrained`` is ``local_files_only=True``.

Conditioning: MusicGen is conditioned on text (T5), so the request's text and attributes are
joined into one prompt (:meth:`GenerationRequest.prompt`); the prior's target embeddings live in
another model's space and are used by the re-ranker only, which the conditioning record says.

Seeds: ``generate`` samples from torch's global RNG, so each candidate is made alone under its
own seed (forked RNG, restored after). That costs batching on a GPU, and buys the property
provenance needs: one stored seed regenerates one track.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import torch

from generation.errors import GenerationError
from generation.generators.base import Candidate, GenerationRequest
from generation.generators.common import (
    check_tokenizer,
    load_or_explain,
    resolve_device,
    resolve_dtype,
    seeded,
    targets_note,
    to_mono,
    weights_id,
)
from generation.generators.layout import check_layout

EXTRA = "gen-hf"


class MusicGenGenerator:
    """A MusicGen checkpoint from a local directory.

    Args:
        path: the checkpoint directory (config, weights, tokenizer, processor config).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: ``"auto"`` (float16 on CUDA, float32 on CPU) or a torch dtype name.
        guidance_scale: classifier-free guidance (3.0, as the MusicGen paper samples).
        temperature: sampling temperature.
        top_k: top-k sampling (250, the paper's setting).

    Raises:
        GeneratorWeightsNotFound: files missing or unloadable (named, with where to get them).
    """

    id = "musicgen"

    def __init__(self, path: str | Path, device: str = "auto", dtype: str = "auto",
                 guidance_scale: float = 3.0, temperature: float = 1.0, top_k: int = 250) -> None:
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        path = check_layout("musicgen", path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.processor = load_or_explain("the MusicGen processor", path, EXTRA, lambda: (
            AutoProcessor.from_pretrained(path, local_files_only=True)))
        check_tokenizer(self.processor.tokenizer, path)
        model = load_or_explain("MusicgenForConditionalGeneration", path, EXTRA, lambda: (
            MusicgenForConditionalGeneration.from_pretrained(
                path, local_files_only=True, dtype=self.dtype)))
        self.model = model.to(self.device).eval()
        audio_cfg = model.config.audio_encoder
        self.sample_rate = int(audio_cfg.sampling_rate)
        self.frame_rate = float(audio_cfg.frame_rate)  # EnCodec frames (tokens) per second
        self.num_codebooks = int(model.config.decoder.num_codebooks)
        self.max_tokens = int(model.config.decoder.max_position_embeddings)
        self.guidance_scale, self.temperature, self.top_k = guidance_scale, temperature, top_k
        self.path = path
        self.weights_id = weights_id(path)
        self._lock = threading.Lock()

    def max_duration_s(self) -> float:
        """The longest candidate the decoder's positions allow (~40 s for the released models)."""
        return (self.max_tokens - self.num_codebooks) / self.frame_rate

    def generate(self, request: GenerationRequest) -> list[Candidate]:
        """Make ``request.n_candidates`` candidates of ``request.duration_s`` each.

        Returns:
            Candidates in seed order; audio float32 mono at :attr:`sample_rate`, exactly
            ``round(duration_s * sample_rate)`` samples.

        Raises:
            GenerationError: a duration past :meth:`max_duration_s`.
        """
        if request.duration_s > self.max_duration_s():
            raise GenerationError(
                f"musicgen makes at most {self.max_duration_s():.1f} s per candidate "
                f"(max_position_embeddings={self.max_tokens}); asked for {request.duration_s} s")
        prompt = request.prompt()
        n_samples = round(request.duration_s * self.sample_rate)
        # The delay pattern costs num_codebooks - 1 frames at the end: ask for that many more.
        tokens = math.ceil(request.duration_s * self.frame_rate) + self.num_codebooks
        inputs = self.processor(text=[prompt], padding=True, return_tensors="pt").to(self.device)
        conditioning = self._conditioning(request, prompt, tokens)
        out = []
        for seed in request.seeds():
            with seeded(seed, self.device, self._lock), torch.inference_mode():
                audio = self.model.generate(
                    **inputs, do_sample=True, guidance_scale=self.guidance_scale,
                    temperature=self.temperature, top_k=self.top_k, max_new_tokens=tokens)
            out.append(Candidate(to_mono(audio[0], n_samples), self.sample_rate, None,
                                 dict(conditioning), self.id, seed, self.weights_id))
        return out

    def _conditioning(self, request: GenerationRequest, prompt: str, tokens: int) -> dict[str, Any]:
        return {
            "prompt": prompt,
            "text": request.text,
            "attributes": dict(request.attributes),
            "target_embeddings": targets_note(request),
            "guidance_scale": self.guidance_scale,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "max_new_tokens": tokens,
        }

