"""CLAP through ``transformers``: a ``ClapModel`` + processor loaded from a local directory.

Works with checkpoints saved by ``ClapModel.save_pretrained`` (e.g. a downloaded
``laion/clap-htsat-unfused``, ``laion/clap-htsat-fused``, ``laion/larger_clap_general``). Nothing
is ever fetched from a hub: every ``from_pretrained`` call is ``local_files_only=True``, and a
missing file raises :class:`~retrieval.errors.WeightsNotFoundError` naming what to put where.

Whole tracks: CLAP sees 10 s at a time, so a waveform is cut into overlapping windows
(``window_s``/``hop_s``), the windows are embedded in batches and their *pre-normalisation*
embeddings are mean-pooled per track, then normalised -- a 5-minute track is represented by all of
it, not by its first 10 s. A clip shorter than a window is repeat-padded, as CLAP was trained.

The shared machinery (:class:`ClapEncoderBase`) also serves the LAION ``.pt`` backend
(:mod:`retrieval.encoders.laion_clap`), which maps those checkpoints into the same model class.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retrieval.encoders.base import l2_normalize
from retrieval.encoders.common import resolve_device, weights_digest, window_starts
from retrieval.errors import RetrievalError, WeightsNotFoundError

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")  # either is enough for a RoBERTa tokenizer
# Three captions that share nothing: a healthy text tower spreads them apart (cosine well under
# 0.9); a collapsed one maps every sentence to nearly the same vector.
COLLAPSE_PROBES = (
    "a solo piano playing a slow sad melody",
    "heavy distorted electric guitars and loud drums",
    "birds singing in a quiet forest at dawn",
)
COLLAPSE_COSINE = 0.98
UNK_PROBE = "a slow string quartet in a minor key"
MIN_VOCAB = 100  # the silent offline pitfall yields ~5 tokens; any real tokenizer has thousands


def check_tokenizer(tokenizer: Any, where: str | Path) -> None:
    """Fail loudly on the silent all-UNK tokenizer (transformers 5.x offline pitfall).

    Raises:
        WeightsNotFoundError: the vocabulary is tiny, or a plain English probe sentence
            tokenises to nothing but unknown/special ids.
    """
    size = len(tokenizer)
    if size < MIN_VOCAB:
        raise WeightsNotFoundError(
            f"the tokenizer loaded from {where} has only {size} tokens: its vocabulary files are "
            f"missing (transformers can silently return an all-UNK tokenizer offline). Put the "
            f"real tokenizer files ({' or '.join(TOKENIZER_FILES)} + merges.txt) in {where}."
        )
    ids = tokenizer(UNK_PROBE, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    if not ids or (unk is not None and all(i == unk for i in ids)):
        raise WeightsNotFoundError(
            f"the tokenizer loaded from {where} maps the probe sentence {UNK_PROBE!r} to unknown "
            f"tokens only ({ids}); its vocabulary is not the one the model was trained with."
        )


def _pooled(out: Any) -> torch.Tensor:
    """The vector from a tower output: a tensor as is, else ``.pooler_output`` (transformers 5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClapEncoderBase:
    """Windowed, batched, deterministic embedding around a ``transformers.ClapModel``.

    Subclasses build ``model`` / ``feature_extractor`` / ``tokenizer`` and call :meth:`_setup`.

    Attributes:
        id: ``<backend>@<12 hex of sha256 of the weights>``.
        dim: projection dimension (512 for the released CLAP checkpoints).
        sample_rate: 48000 for every released CLAP.
        text_collapse_cosine: mean pairwise cosine of three unrelated probe captions (a health
            check of the text tower; > 0.98 means it is collapsed and text search is useless).
    """

    id: str
    dim: int
    sample_rate: int
    text_collapse_cosine: float

    def _setup(self, model: Any, feature_extractor: Any, tokenizer: Any, id: str, device: str,
               window_s: float, hop_s: float, batch_size: int, max_text_length: int) -> None:
        if window_s <= 0 or hop_s <= 0 or batch_size < 1:
            raise RetrievalError(
                f"window_s and hop_s must be > 0 and batch_size >= 1, got window_s={window_s}, "
                f"hop_s={hop_s}, batch_size={batch_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()  # eval: no dropout, BatchNorm uses its stats
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.id = id
        self.dim = int(model.config.projection_dim)
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.window = int(round(window_s * self.sample_rate))
        self.hop = int(round(hop_s * self.sample_rate))
        self.batch_size = batch_size
        self.max_text_length = max_text_length
        self.fusion = bool(model.config.audio_config.enable_fusion)
        self.text_collapse_cosine = self._probe_collapse()

    def _probe_collapse(self) -> float:
        e = self.embed_text(list(COLLAPSE_PROBES))
        sims = e @ e.T
        mean = float(sims[np.triu_indices(len(e), k=1)].mean())
        if mean > COLLAPSE_COSINE:
            logger.warning(
                "encoder %s: the text tower looks collapsed (mean cosine %.4f between unrelated "
                "probe captions > %.2f); text queries will not separate tracks. This is reported "
                "for laion/larger_clap_music -- use laion/clap-htsat-unfused or a LAION .pt "
                "music checkpoint instead.", self.id, mean, COLLAPSE_COSINE)
        return mean

    @torch.inference_mode()
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed captions or queries.

        Args:
            texts: ``n`` strings.

        Returns:
            float32 ``[n, dim]``, unit rows.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size * 8):  # text is cheap: bigger batches
            chunk = [str(t) for t in texts[i:i + self.batch_size * 8]]
            tok = self.tokenizer(chunk, padding=True, truncation=True,
                                 max_length=self.max_text_length, return_tensors="pt")
            tok = {k: v.to(self.device) for k, v in tok.items()
                   if k in ("input_ids", "attention_mask")}
            hidden = _pooled(self.model.text_model(**tok))
            vec = self.model.text_projection(hidden)
            out[i:i + len(chunk)] = vec.float().cpu().numpy()
        return l2_normalize(out)

    @torch.inference_mode()
    def embed_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Pre-normalisation embeddings of waveforms no longer than one window.

        Args:
            windows: mono float32 waveforms at ``sample_rate``, each ``<= window`` samples
                (shorter ones are repeat-padded by the feature extractor).

        Returns:
            float32 ``[len(windows), dim]``, *not* normalised (so windows can be mean-pooled).
        """
        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        for i in range(0, len(windows), self.batch_size):
            chunk = [np.asarray(w, dtype=np.float32) for w in windows[i:i + self.batch_size]]
            feats = self.feature_extractor(
                chunk, sampling_rate=self.sample_rate, return_tensors="pt",
                truncation="fusion" if self.fusion else "rand_trunc", padding="repeatpad")
            x = feats["input_features"].to(self.device)
            # Every window fits in 10 s, so none is "longer"; set it ourselves because the
            # fusion feature extractor otherwise marks a random clip as longer (nondeterminism).
            is_longer = torch.zeros((len(chunk), 1), dtype=torch.bool, device=self.device)
            hidden = _pooled(self.model.audio_model(input_features=x, is_longer=is_longer))
            out[i:i + len(chunk)] = self.model.audio_projection(hidden).float().cpu().numpy()
        return out

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Embed whole tracks: overlapping windows, mean-pooled before normalisation.

        Args:
            waveforms: ``n`` mono float32 waveforms at ``sample_rate``, any length.

        Returns:
            float32 ``[n, dim]``, unit rows.
        """
        windows: list[np.ndarray] = []
        owners: list[int] = []
        for k, w in enumerate(waveforms):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1 or w.size == 0:
                raise RetrievalError(
                    f"waveform {k} must be a non-empty mono 1-D array, got shape {w.shape}")
            for s in window_starts(w.size, self.window, self.hop):
                windows.append(w[s:s + self.window])
                owners.append(k)
        raw = self.embed_windows(windows)  # all windows of all tracks batched together
        pooled = np.zeros((len(waveforms), self.dim), dtype=np.float64)
        idx = np.asarray(owners, dtype=np.int64)
        counts = np.bincount(idx, minlength=len(waveforms))
        np.add.at(pooled, idx, raw)
        return l2_normalize(pooled / np.maximum(counts, 1)[:, None])


def _missing_message(path: Path, missing: list[str]) -> str:
    return (
        f"CLAP weights not found in {path}: missing {', '.join(missing)}. Expected a "
        f"directory saved by transformers' ClapModel/ClapProcessor (config.json, "
        f"model.safetensors or pytorch_model.bin, preprocessor_config.json, tokenizer.json or "
        f"vocab.json + merges.txt). Nothing is downloaded automatically: download "
        f"laion/clap-htsat-unfused (e.g. `huggingface-cli download laion/clap-htsat-unfused "
        f"--local-dir {path}`) on a machine with network access and copy it into {path}."
    )


class HFClapEncoder(ClapEncoderBase):
    """A ``transformers`` CLAP checkpoint from a local directory.

    Args:
        path: directory with ``config.json``, ``model.safetensors`` (or ``pytorch_model.bin``),
            ``preprocessor_config.json`` and the tokenizer files.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        window_s: analysis window in seconds (CLAP's native 10 s).
        hop_s: hop between windows in seconds (5 s: 50% overlap).
        batch_size: windows per forward pass (texts use 8x this).

    Raises:
        WeightsNotFoundError: a file is missing, or the tokenizer is the silent all-UNK one.
    """

    def __init__(self, path: str | Path, device: str = "auto", window_s: float = 10.0,
                 hop_s: float = 5.0, batch_size: int = 8) -> None:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise WeightsNotFoundError(_missing_message(path, ["the directory itself"]))
        weights = [path / f for f in WEIGHT_FILES if (path / f).is_file()]
        weights = weights[:1] or sorted(path.glob("model-*.safetensors"))  # sharded saves
        missing = [f for f in ("config.json", "preprocessor_config.json")
                   if not (path / f).is_file()]
        if not weights:
            missing.append(" or ".join(WEIGHT_FILES))
        if not any((path / f).is_file() for f in TOKENIZER_FILES):
            missing.append(" or ".join(TOKENIZER_FILES))
        if missing:
            raise WeightsNotFoundError(_missing_message(path, missing))

        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            feature_extractor = ClapFeatureExtractor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsNotFoundError(f"cannot load the CLAP processor from {path}: {e}") from e
        check_tokenizer(tokenizer, path)
        try:
            model = ClapModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsNotFoundError(f"cannot load ClapModel from {path}: {e}") from e
        text_positions = int(model.config.text_config.max_position_embeddings) - 2  # RoBERTa
        self.path = path
        self._setup(model, feature_extractor, tokenizer, f"hf-clap@{weights_digest(weights)}",
                    device, window_s, hop_s, batch_size,
                    min(text_positions, int(getattr(tokenizer, "model_max_length", 512))))
