"""LAION-CLAP ``.pt`` checkpoints, loaded into ``transformers.ClapModel`` without ``laion-clap``.

Why not the ``laion-clap`` package: it pins ``numpy<2`` (pip downgrades ours), imports
``torchvision`` without declaring it, and fetches the ``roberta-base``/``bert``/``bart``
tokenizers and ``RobertaModel`` from the hub at import/construction time. The checkpoint itself
is just a state dict of an HTSAT audio tower + RoBERTa text tower + two MLP projections, the same
architecture as ``transformers.ClapModel``; this module renames its keys (splitting HTSAT's fused
``qkv`` into query/key/value, as transformers' own conversion script does), infers the config
from the tensor shapes, and loads it strictly: every model weight must come from the checkpoint.

What is dropped: the torchlibrosa spectrogram/log-mel buffers (the transformers feature extractor
computes the same 48 kHz, 64-mel, hop 480, 50-14000 Hz log-mel in numpy), the HTSAT
classification head (``head``, ``tscam_conv``) and the training-only ``text_transform`` /
``audio_transform`` MLPs, none of which take part in the embeddings.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from retrieval.encoders.hf_clap import ClapEncoderBase, check_tokenizer, weights_digest
from retrieval.errors import RetrievalError, WeightsNotFoundError

logger = logging.getLogger(__name__)

# Audio-tower presets of laion_clap's model configs: (patch embed width, depths).
AMODELS: dict[str, tuple[int, list[int]]] = {
    "HTSAT-tiny": (96, [2, 2, 6, 2]),
    "HTSAT-base": (128, [2, 2, 12, 2]),
    "HTSAT-large": (256, [2, 2, 12, 2]),
}
TEXT_MAX_LENGTH = 77  # laion_clap tokenises with max_length=77
_DROP = re.compile(
    r"^(text_transform\.|audio_transform\.|audio_branch\.(spectrogram_extractor|logmel_extractor"
    r"|head|tscam_conv|spec_augmenter)\.|.*\.attn_mask$)")
# Inside one HTSAT block: LAION name -> transformers name (qkv is split separately).
_BLOCK = {
    "norm1.": "layernorm_before.",
    "norm2.": "layernorm_after.",
    "attn.proj.": "attention.output.dense.",
    "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "attn.relative_position_index": "attention.self.relative_position_index",
    "mlp.fc1.": "intermediate.dense.",
    "mlp.fc2.": "output.dense.",
}
_BLOCK_KEY = re.compile(r"^(layers\.\d+\.blocks\.\d+\.)(.*)$")
_HF_BLOCK_QKV = re.compile(r"^(.*)attention\.self\.(query|key|value)\.(weight|bias)$")


def laion_to_hf_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a LAION-CLAP state dict to ``transformers.ClapModel`` keys.

    Args:
        sd: the checkpoint's ``state_dict`` (a ``module.`` DDP prefix is stripped).

    Returns:
        A new dict with ClapModel keys; LAION-only entries (spectrogram buffers, classifier
        head, training transforms, attention masks) are left out.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        key = key.removeprefix("module.")
        if _DROP.match(key):
            continue
        proj = re.match(r"^(text|audio)_projection\.(\d+)\.(.*)$", key)
        if proj:  # nn.Sequential(Linear, ReLU, Linear): indices 0 and 2
            layer = {"0": "linear1", "2": "linear2"}.get(proj.group(2))
            if layer is None:
                raise RetrievalError(f"unexpected projection key {key!r} in the checkpoint")
            out[f"{proj.group(1)}_projection.{layer}.{proj.group(3)}"] = value
        elif key.startswith("text_branch."):
            out["text_model." + key.removeprefix("text_branch.")] = value
        elif key.startswith("audio_branch."):
            _audio_key(key.removeprefix("audio_branch."), value, out)
        else:
            out[key] = value  # logit_scale_a / logit_scale_t
    return out


def _audio_key(key: str, value: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    prefix = "audio_model.audio_encoder."
    if key.startswith("bn0."):
        out[prefix + "batch_norm." + key.removeprefix("bn0.")] = value
        return
    m = _BLOCK_KEY.match(key)
    if not m:  # patch_embed.*, layers.i.downsample.*, norm.*: same names
        out[prefix + key] = value
        return
    block, rest = m.groups()
    if rest.startswith("attn.qkv."):
        q, k, v = value.chunk(3, dim=0)  # nn.Linear(dim, 3*dim): rows are [q; k; v]
        leaf = rest.removeprefix("attn.qkv.")
        for name, part in (("query", q), ("key", k), ("value", v)):
            out[f"{prefix}{block}attention.self.{name}.{leaf}"] = part.clone()
        return
    for old, new in _BLOCK.items():
        if rest.startswith(old):
            out[prefix + block + new + rest.removeprefix(old)] = value
            return
    raise RetrievalError(f"unexpected HTSAT key audio_branch.{key} in the checkpoint")


def hf_to_laion_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`laion_to_hf_state_dict` (for tests and for exporting).

    Args:
        sd: a ``transformers.ClapModel`` state dict.

    Returns:
        The same tensors under LAION-CLAP key names (HTSAT ``qkv`` re-fused).
    """
    inverse_block = {v: k for k, v in _BLOCK.items()}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        proj = re.match(r"^(text|audio)_projection\.linear([12])\.(.*)$", key)
        if proj:
            idx = "0" if proj.group(2) == "1" else "2"
            out[f"{proj.group(1)}_projection.{idx}.{proj.group(3)}"] = value
        elif key.startswith("text_model."):
            out["text_branch." + key.removeprefix("text_model.")] = value
        elif key.startswith("audio_model.audio_encoder."):
            rest = key.removeprefix("audio_model.audio_encoder.")
            if rest.startswith("batch_norm."):
                out["audio_branch.bn0." + rest.removeprefix("batch_norm.")] = value
                continue
            m = _BLOCK_KEY.match(rest)
            if not m:
                out["audio_branch." + rest] = value
                continue
            block, inner = m.groups()
            split = _HF_BLOCK_QKV.match(inner)
            if split:
                qkv.setdefault(f"audio_branch.{block}attn.qkv.{split.group(3)}", {})[
                    split.group(2)] = value
                continue
            for new, old in inverse_block.items():
                if inner.startswith(new):
                    out["audio_branch." + block + old + inner.removeprefix(new)] = value
                    break
            else:
                raise RetrievalError(f"unexpected ClapModel key {key!r}")
        else:
            out[key] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    return out


def config_from_state_dict(sd: dict[str, torch.Tensor]) -> Any:
    """A ``ClapConfig`` whose shapes match a (renamed) state dict.

    Why infer: the checkpoint's tensor shapes are the ground truth; guessing from a model name
    fails with size mismatches when the name is wrong. Only the text head count is not in the
    shapes: it follows RoBERTa's 64-wide heads.
    """
    from transformers import ClapConfig

    t, a = "text_model.", "audio_model.audio_encoder."
    vocab, hidden = sd[t + "embeddings.word_embeddings.weight"].shape
    text_layers = 1 + max(int(m.group(1)) for k in sd
                          if (m := re.match(re.escape(t) + r"encoder\.layer\.(\d+)\.", k)))
    text_config = dict(
        vocab_size=int(vocab), hidden_size=int(hidden), num_hidden_layers=text_layers,
        num_attention_heads=max(1, int(hidden) // 64),
        intermediate_size=int(sd[t + "encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(sd[t + "embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=int(sd[t + "embeddings.token_type_embeddings.weight"].shape[0]),
        layer_norm_eps=1e-5, pad_token_id=1,  # RoBERTa's
        projection_dim=int(sd["text_projection.linear2.weight"].shape[0]),
    )
    blocks: dict[int, set[int]] = {}
    for k in sd:
        if m := re.match(re.escape(a) + r"layers\.(\d+)\.blocks\.(\d+)\.", k):
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    depths = [len(blocks[i]) for i in sorted(blocks)]
    heads = [int(sd[f"{a}layers.{i}.blocks.0.attention.self.relative_position_bias_table"]
                 .shape[1]) for i in sorted(blocks)]
    table_rows = sd[f"{a}layers.0.blocks.0.attention.self.relative_position_bias_table"].shape[0]
    proj = sd[a + "patch_embed.proj.weight"]  # [width, channels, patch, patch]
    audio_config = dict(
        patch_embeds_hidden_size=int(proj.shape[0]), depths=depths, num_attention_heads=heads,
        window_size=(int(round(math.sqrt(table_rows))) + 1) // 2,
        patch_size=int(proj.shape[-2]), patch_stride=[int(proj.shape[-2])] * 2,
        hidden_size=int(sd[a + "norm.weight"].shape[0]),
        num_mel_bins=int(sd[a + "batch_norm.weight"].shape[0]),
        enable_fusion=any(k.startswith(a + "patch_embed.fusion_model.") for k in sd),
        projection_dim=int(sd["audio_projection.linear2.weight"].shape[0]),
    )
    return ClapConfig(text_config=text_config, audio_config=audio_config,
                      projection_dim=text_config["projection_dim"])


def _load_checkpoint(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as e:
        raise RetrievalError(
            f"{path} holds more than tensors and was refused by torch.load(weights_only=True). "
            f"If you trust the file, pass allow_pickle=True (it runs the pickle's code).") from e
    except (RuntimeError, OSError, EOFError) as e:
        raise RetrievalError(f"cannot read the LAION-CLAP checkpoint {path}: {e}") from e
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not sd:
        raise RetrievalError(f"{path} does not contain a state dict")
    return sd


class LaionClapEncoder(ClapEncoderBase):
    """A LAION-CLAP ``.pt`` checkpoint, run by ``transformers.ClapModel``.

    Args:
        checkpoint: the ``.pt`` file, e.g. ``music_audioset_epoch_15_esc_90.14.pt``
            (HTSAT-base) or ``630k-audioset-best.pt`` (HTSAT-tiny).
        amodel: ``"HTSAT-tiny" | "HTSAT-base" | "HTSAT-large"``, checked against the checkpoint's
            shapes (a wrong name fails with a clear message instead of a size mismatch);
            ``None`` skips the check.
        enable_fusion: whether the checkpoint is a fusion one; checked against its keys.
        tokenizer_path: a local directory with the ``roberta-base`` tokenizer files
            (``vocab.json`` + ``merges.txt``, or ``tokenizer.json``); ``None`` means the
            ``roberta-base`` directory beside the checkpoint.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        window_s: analysis window in seconds (10 s, as trained).
        hop_s: hop between windows in seconds.
        batch_size: windows per forward pass.
        allow_pickle: let ``torch.load`` unpickle non-tensor objects (only for trusted files).

    Raises:
        WeightsNotFoundError: the checkpoint or tokenizer is missing, or the tokenizer is the
            silent all-UNK one.
        RetrievalError: the checkpoint does not match ``amodel``/``enable_fusion`` or the model.
    """

    def __init__(self, checkpoint: str | Path, amodel: str | None = "HTSAT-base",
                 enable_fusion: bool = False, tokenizer_path: str | Path | None = None,
                 device: str = "auto", window_s: float = 10.0, hop_s: float = 5.0,
                 batch_size: int = 8, allow_pickle: bool = False) -> None:
        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise WeightsNotFoundError(
                f"LAION-CLAP checkpoint not found: {checkpoint}. Expected a .pt file such as "
                f"music_audioset_epoch_15_esc_90.14.pt (from the lukewys/laion_clap model page); "
                f"download it on a machine with network access and copy it to {checkpoint}.")
        if tokenizer_path is None:  # the convention that lets TUNESCOPE_ENCODER_PATH suffice
            tokenizer_path = checkpoint.parent / "roberta-base"
        if not Path(tokenizer_path).expanduser().is_dir():
            raise WeightsNotFoundError(
                f"LAION-CLAP needs a local roberta-base tokenizer directory; {tokenizer_path} "
                f"does not exist. Download FacebookAI/roberta-base's vocab.json, merges.txt and "
                f"tokenizer_config.json into {checkpoint.parent / 'roberta-base'} (found there "
                f"automatically) or pass tokenizer_path=.")
        if amodel is not None and amodel not in AMODELS:
            raise RetrievalError(f"amodel must be one of {sorted(AMODELS)} or None, got {amodel!r}")
        tokenizer_path = Path(tokenizer_path).expanduser()

        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        try:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsNotFoundError(
                f"cannot load a tokenizer from {tokenizer_path} (expected roberta-base's "
                f"vocab.json + merges.txt or tokenizer.json): {e}") from e
        check_tokenizer(tokenizer, tokenizer_path)

        sd = laion_to_hf_state_dict(_load_checkpoint(checkpoint, allow_pickle))
        try:
            config = config_from_state_dict(sd)
        except (KeyError, ValueError) as e:
            raise RetrievalError(
                f"{checkpoint} does not look like a LAION-CLAP HTSAT+RoBERTa checkpoint "
                f"(missing {e})") from e
        ac = config.audio_config
        if amodel is not None and AMODELS[amodel] != (ac.patch_embeds_hidden_size, ac.depths):
            raise RetrievalError(
                f"{checkpoint} has an HTSAT of width {ac.patch_embeds_hidden_size} and depths "
                f"{ac.depths}, which is not amodel={amodel!r} {AMODELS[amodel]}; pass the right "
                f"amodel (music checkpoints are HTSAT-base) or amodel=None.")
        if ac.enable_fusion != enable_fusion:
            raise RetrievalError(
                f"{checkpoint} is {'a' if ac.enable_fusion else 'not a'} fusion checkpoint but "
                f"enable_fusion={enable_fusion}")
        model = ClapModel(config)
        self._load_strict(model, sd, checkpoint)
        self.checkpoint = checkpoint
        feature_extractor = ClapFeatureExtractor(
            feature_size=ac.num_mel_bins, sampling_rate=48000, hop_length=480,
            fft_window_size=1024, frequency_min=50, frequency_max=14000, max_length_s=10,
            truncation="fusion" if enable_fusion else "rand_trunc", padding="repeatpad")
        encoder_id = f"laion-clap@{weights_digest([checkpoint])}"
        self._setup(model, feature_extractor, tokenizer, encoder_id, device, window_s, hop_s,
                    batch_size, TEXT_MAX_LENGTH)

    @staticmethod
    def _load_strict(model: Any, sd: dict[str, torch.Tensor], checkpoint: Path) -> None:
        # Buffers the model rebuilds identically by itself may be absent from old checkpoints.
        optional = re.compile(r".*(position_ids|token_type_ids|relative_position_index"
                              r"|num_batches_tracked)$")
        try:
            result = model.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise RetrievalError(f"{checkpoint} does not fit the inferred ClapModel: {e}") from e
        missing = [k for k in result.missing_keys if not optional.match(k)]
        if missing or result.unexpected_keys:
            raise RetrievalError(
                f"{checkpoint} does not map onto ClapModel: missing {missing[:8]} "
                f"({len(missing)}), unexpected {result.unexpected_keys[:8]} "
                f"({len(result.unexpected_keys)})")
