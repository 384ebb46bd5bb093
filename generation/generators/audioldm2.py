"""AudioLDM2 through ``diffusers``: text -> CLAP + T5 -> GPT-2 -> latent diffusion -> mel -> audio.

Works with ``AudioLDM2Pipeline`` directories (``cvssp/audioldm2-music`` for music, ``cvssp/audioldm2``,
``cvssp/audioldm2-large``), loaded with ``local_files_only=True``.

The language model: diffusers 0.42 runs AudioLDM2's GPT-2 step with ``GenerationMixin``
methods (``_get_initial_cache_position``, ``_update_model_kwargs_for_generation``), which a bare
``GPT2Model`` lacks under transformers 5 -- and the released checkpoints' ``model_index.json``
still names ``GPT2Model``, so a plain ``from_pretrained`` fails at the first prompt
(diffusers issue #12630). The same weights load into ``GPT2LMHeadModel`` (its ``transformer``
is the ``GPT2Model``; only hidden states are used, never the LM head), so that is what is
passed in.

Seeds: one ``torch.Generator`` per candidate (a list, batched), so candidate ``i``'s latents come
from ``seed + i`` alone. ``num_waveforms_per_prompt`` stays 1 and the prompt is repeated
instead: with more waveforms per prompt the pipeline re-sorts them by its own CLAP score
(when librosa is installed), which would break the seed -> candidate mapping; re-ranking is the
job of :mod:`generation.generators.rerank`, with the platform's encoder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generation.generators.common import load_or_explain, resolve_device, resolve_dtype
from generation.generators.diffusers_audio import DiffusersAudioGenerator
from generation.generators.layout import check_layout

EXTRA = "gen-hf"


class AudioLDM2Generator(DiffusersAudioGenerator):
    """An AudioLDM2 pipeline from a local directory.

    Args:
        path: the pipeline directory (``model_index.json`` and one folder per component).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: ``"auto"`` (float16 on CUDA, float32 on CPU) or a torch dtype name.
        num_inference_steps: denoising steps (200 is the checkpoints' documented quality
            setting; 50 is a usable fast one).
        guidance_scale: classifier-free guidance.
        negative_prompt: what to steer away from (``None`` for none).
        batch_size: candidates per pipeline call (memory bound on a GPU).

    Raises:
        GeneratorWeightsNotFound: files missing or unloadable (named, with where to get them).
    """

    id = "audioldm2"

    def __init__(self, path: str | Path, device: str = "auto", dtype: str = "auto",
                 num_inference_steps: int = 200, guidance_scale: float = 3.5,
                 negative_prompt: str | None = "low quality, average quality",
                 batch_size: int = 4) -> None:
        from diffusers import AudioLDM2Pipeline
        from transformers import GPT2LMHeadModel

        path = check_layout("audioldm2", path)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        lm = load_or_explain("the GPT-2 language model", path / "language_model", EXTRA, lambda: (
            _head_tied(GPT2LMHeadModel.from_pretrained(path / "language_model", local_files_only=True,
                                                       dtype=self.dtype))))
        pipe = load_or_explain("AudioLDM2Pipeline", path, EXTRA, lambda: (
            AudioLDM2Pipeline.from_pretrained(path, language_model=lm, local_files_only=True,
                                              dtype=self.dtype)))
        self._setup(pipe, path, int(pipe.vocoder.config.sampling_rate), num_inference_steps,
                    guidance_scale, negative_prompt, batch_size)

    def _call(self, prompts: list[str], negative: list[str] | None,
              generators: list[torch.Generator], duration_s: float) -> torch.Tensor:
        return self.pipe(prompts, audio_length_in_s=duration_s,
                         num_inference_steps=self.num_inference_steps,
                         guidance_scale=self.guidance_scale, negative_prompt=negative,
                         num_waveforms_per_prompt=1, generator=generators,
                         output_type="pt").audios


def _head_tied(lm: torch.nn.Module) -> torch.nn.Module:
    """The LM head tied to the token embeddings when loading left it without data.

    A ``GPT2Model`` checkpoint has no ``lm_head`` weights; transformers normally ties the head
    to ``wte``, but a load that skips the tie (seen intermittently in CI: the head stayed on the
    ``meta`` device and ``pipe.to(device)`` failed) would leave it empty. The head is never used
    (only hidden states are), so tying it is exact for this pipeline.
    """
    head = getattr(lm, "lm_head", None)
    if head is not None and head.weight.is_meta:
        head.weight = lm.get_input_embeddings().weight
    return lm

