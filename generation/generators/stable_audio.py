"""Stable Audio Open through ``diffusers``: text (T5) + timing -> DiT latent diffusion -> audio.

Works with ``StableAudioPipeline`` directories (``stabilityai/stable-audio-open-1.0``, 44.1 kHz
stereo, up to 47 s; ``stabilityai/stable-audio-open-small``, up to ~11 s), loaded with
``local_files_only=True``. Stereo is averaged to mono: the platform's encoder and store are mono.

Their scheduler (``CosineDPMSolverMultistepScheduler``) draws its SDE noise from a Brownian tree
that needs the ``torchsde`` package; without it diffusers substitutes a placeholder that fails
at load, which is reported here as :class:`~generation.errors.GeneratorUnavailable` naming the
extra. The scheduler takes the list of per-candidate generators too (one Brownian tree per
seed), so candidate ``i`` depends on ``seed + i`` alone, as with AudioLDM2.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generation.errors import GenerationError
from generation.generators.base import GenerationRequest
from generation.generators.common import load_or_explain, resolve_device, resolve_dtype
from generation.generators.diffusers_audio import DiffusersAudioGenerator
from generation.generators.layout import check_layout

EXTRA = "gen-hf"


class StableAudioGenerator(DiffusersAudioGenerator):
    """A Stable Audio Open pipeline from a local directory.

    Args:
        path: the pipeline directory (``model_index.json`` and one folder per component).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: ``"auto"`` (float16 on CUDA, float32 on CPU) or a torch dtype name.
        num_inference_steps: denoising steps (100 for 1.0; the small model is distilled for 8).
        guidance_scale: classifier-free guidance (7.0, the pipeline's default).
        negative_prompt: what to steer away from (``None`` for none).
        batch_size: candidates per pipeline call.

    Raises:
        GeneratorWeightsNotFound: files missing or unloadable (named, with where to get them).
        GeneratorUnavailable: the scheduler needs ``torchsde`` and it is not installed.
    """

    id = "stable-audio"

    def __init__(self, path: str | Path, device: str = "auto", dtype: str = "auto",
                 num_inference_steps: int = 100, guidance_scale: float = 7.0,
                 negative_prompt: str | None = "low quality", batch_size: int = 4) -> None:
        from diffusers import StableAudioPipeline

        path = check_layout("stable-audio", path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        pipe = load_or_explain("StableAudioPipeline", path, EXTRA, lambda: (
            StableAudioPipeline.from_pretrained(path, local_files_only=True,
                                                dtype=self.dtype)))
        self._setup(pipe, path, int(pipe.vae.config.sampling_rate), num_inference_steps,
                    guidance_scale, negative_prompt, batch_size)

    def max_duration_s(self) -> float:
        """The longest candidate the DiT's latent length allows (47.55 s for 1.0)."""
        latent = int(self.pipe.transformer.config.sample_size)
        return latent * int(self.pipe.vae.hop_length) / self.sample_rate

    def _check(self, request: GenerationRequest) -> None:
        if request.duration_s > self.max_duration_s():
            raise GenerationError(
                f"stable-audio makes at most {self.max_duration_s():.2f} s per candidate; asked "
                f"for {request.duration_s} s")

    def _call(self, prompts: list[str], negative: list[str] | None,
              generators: list[torch.Generator], duration_s: float) -> torch.Tensor:
        return self.pipe(prompts, audio_end_in_s=duration_s,
                         num_inference_steps=self.num_inference_steps,
                         guidance_scale=self.guidance_scale, negative_prompt=negative,
                         num_waveforms_per_prompt=1, generator=generators,
                         output_type="pt").audios
