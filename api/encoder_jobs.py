"""Encoder jobs that wire the renderer (``generation``) to the trainer and metrics (``retrieval``).

This is composition, so it lives in ``api``: ``retrieval`` cannot import ``generation``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generation.demo.training_data import FeatureSet, build_feature_set
from generation.symbolic.render import HELDOUT_SOUNDFONT, soundfont_paths, training_soundfonts
from retrieval.captions import facts_from_row, training_captions
from retrieval.encoders.default import DEFAULT_WEIGHTS, ClapMini, load_minilm
from retrieval.encoders.features import FEATURE_VERSION, frames_for
from retrieval.encoders.training import (
    TUNE_TYPES,
    TextHeadConfig,
    TrainConfig,
    TrainData,
    Trainer,
    fit_text_head,
    label_arrays,
    label_names,
    prompt_bank,
    save_weights,
)
from retrieval.evaluation.encoder_report import zero_shot
from retrieval.evaluation.metrics import retrieval_metrics

Log = Callable[[str], None]


def cache_key(**kwargs: Any) -> str:
    """What a cached feature set was built with (``progress`` aside), plus the feature version."""
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items() if k != "progress"}
    params["feature_version"] = FEATURE_VERSION  # features changed -> cached renders are stale
    return json.dumps(params, sort_keys=True, default=str)


def cached_feature_set(cache: Path, name: str, log: Log, **kwargs: Any) -> FeatureSet:
    """Load ``cache/name.npz`` if it was built with the same arguments, else build and save it."""
    path = cache / f"{name}.npz"
    meta = cache / f"{name}.json"
    key = cache_key(**kwargs)
    if path.is_file() and meta.is_file() and meta.read_text() == key:
        log(f"using cached {path}")
        return FeatureSet.load(path)
    t = time.time()
    fs = build_feature_set(**kwargs)
    fs.save(path)
    meta.write_text(key)
    log(f"built {name}: {len(fs.rows)} renders in {time.time() - t:.0f} s")
    return fs


def embed_captions(texts: Sequence[str], batch: int = 256, cache: Path | None = None) -> np.ndarray:
    """Frozen MiniLM vectors (384-d, unnormalised as MiniLM emits them) for every caption.

    With ``cache`` (a folder), the vectors of this exact list of texts are kept in
    ``captions-<sha256>.npy`` there: MiniLM over 60k captions costs ~7 minutes on 2 cores, and
    the text-head experiments reuse one caption list many times.
    """
    path = None
    if cache is not None:
        import hashlib

        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = cache / f"captions-{digest}.npy"
        if path.is_file():
            return np.load(path)
    model = load_minilm("cpu")
    vecs = model.encode(list(texts), batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vecs)
        tmp.replace(path)
    return vecs


def audio_window_embeddings(model: ClapMini, fs: FeatureSet, batch: int = 64) -> torch.Tensor:
    """Unnormalised audio embeddings ``[n, 3, dim]`` of the 10 s windows at 0, 5 and 10 s.

    The windows ``DefaultEncoder.embed_audio`` takes from a 20 s clip.
    """
    frames = frames_for(10.0)
    starts = [0, 250, 500]
    out = []
    with torch.inference_mode():
        for s in range(0, len(fs.rows), batch):
            views = []
            for st in starts:
                feats = {
                    "logmel": torch.from_numpy(fs.logmel[s:s + batch, :, st:st + frames].astype(np.float32)),
                    "chroma": torch.from_numpy(fs.chroma[s:s + batch, :, st:st + frames].astype(np.float32)),
                    "onset": torch.from_numpy(fs.onset[s:s + batch, st:st + frames].astype(np.float32)),
                }
                views.append(model.embed_audio_feats(feats))
            out.append(torch.stack(views, 1))
    return torch.cat(out)


def audio_embeddings_from_features(model: ClapMini, fs: FeatureSet, batch: int = 64) -> np.ndarray:
    """Unit audio embeddings ``[n, dim]`` from stored 20 s features.

    The mean of the 10 s windows at 0, 5 and 10 s (:func:`audio_window_embeddings`),
    normalised after pooling, as ``DefaultEncoder.embed_audio`` pools them.
    """
    return torch.nn.functional.normalize(audio_window_embeddings(model, fs, batch).sum(1), dim=-1).numpy()


def text_embedder(model: ClapMini) -> Callable[[list[str]], np.ndarray]:
    """embed_text for a model under training (frozen MiniLM + the model's projection).

    MiniLM is frozen, so its vector of each distinct text is computed once and kept: a
    validation loop calls this every epoch or every few hundred steps with the same prompts.
    """
    minilm = load_minilm("cpu")
    memo: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in memo]
        if todo:
            for t, v in zip(todo, minilm.encode(todo, show_progress_bar=False), strict=True):
                memo[t] = v
        v = torch.from_numpy(np.stack([memo[t] for t in texts]).astype(np.float32))
        with torch.inference_mode():
            return torch.nn.functional.normalize(model.embed_text_vecs(v), dim=-1).numpy()

    return embed


def quick_metrics(model: ClapMini, fs: FeatureSet, audio: np.ndarray | None = None,
                  embed: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, float]:
    """Validation metrics used for early stopping.

    Caption->audio R@10 (relevant = same piece) and zero-shot balanced accuracy on the four
    attributes; ``score`` is their mean. ``audio`` and ``embed`` may be given when the audio
    tower is frozen (text-head training), so they are not recomputed per call.
    """
    audio = audio_embeddings_from_features(model, fs) if audio is None else audio
    embed = embed or text_embedder(model)
    caps = [r["captions"][0] for r in fs.rows]
    pieces = np.array([r["piece_id"] for r in fs.rows])
    sims = embed(caps) @ audio.T
    rel = pieces[:, None] == pieces[None, :]
    m = retrieval_metrics(sims, rel)
    out = {"val_R@10": round(m["R@10"], 4)}
    for attr in ("instrument_family", "tempo_bucket", "mode_family", "meter_class"):
        out[f"val_{attr}"] = round(zero_shot(audio, fs.rows, embed, attr)["balanced_accuracy"], 4)
    out["score"] = round(float(np.mean(list(out.values()))), 4)
    return out


def train_default_encoder(cache: Path, out: Path = DEFAULT_WEIGHTS, *, size: int = 2400, renders: int = 2,
                          val_size: int = 200, seed: int = 0, cfg: TrainConfig | None = None,
                          extra_captions: int = 0, v2: bool = False, render_only: bool = False,
                          init: Path | None = None, workers: int | None = None, log: Log = print,
                          progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Render the training and validation sets, train clap-mini, save it. Returns the training info.

    ``v2`` renders with encoder v2's variety and production chain (:func:`v2_render_args`) and
    adds ``extra_captions`` varied captions per clip (:func:`retrieval.caption_variety.varied_captions`)
    instead of more template draws; without it the v1 weights are reproduced. ``init``: weights
    to start from (:func:`retrieval.encoders.training.warm_start` says how a grown rhythm input
    is widened); the sidecar records them.
    """
    cfg = cfg or TrainConfig(seed=seed)
    init_state, init_info = _init_weights(init) if init is not None else (None, None)
    sfs = tuple(training_soundfonts())
    log(f"training soundfonts: {list(sfs)} (held out for evaluation: {HELDOUT_SOUNDFONT})")
    extra = v2_render_args() if v2 else {}
    train_fs, val_fs = training_sets(cache, v2, size=size, renders=renders, val_size=val_size, seed=seed,
                                     workers=workers, log=log, progress=progress)
    if render_only:
        return {"train_renders": len(train_fs.rows), "validation_renders": len(val_fs.rows)}
    texts, caption_ids = caption_table(train_fs.rows, extra_captions, seed * 100_003, v2)
    t = time.time()
    vecs = embed_captions(texts, cache=cache)
    log(f"embedded {len(texts)} captions with MiniLM in {time.time() - t:.0f} s")
    data = TrainData(train_fs.logmel, train_fs.chroma, train_fs.onset, caption_ids,
                     label_arrays(train_fs.rows, label_names(cfg)))
    bank = _prompt_bank(cfg, cache, log) if cfg.prompt_weight > 0 else None
    trainer = Trainer(cfg, vecs, texts, init_state=init_state, prompt_bank=bank)
    if init_info is not None:
        init_info["widened"] = trainer.widened
        log(f"warm start from {init_info['encoder_id']} (widened: {trainer.widened or 'none'})")
    info = trainer.fit(data, lambda m: quick_metrics(m, val_fs), log=log)
    if init_info is not None:
        info["init"] = init_info
    info["data"] = {"train_pieces": len({r["piece_id"] for r in train_fs.rows}), "train_renders": len(train_fs.rows),
                    "validation_renders": len(val_fs.rows), "soundfonts": list(sfs),
                    "heldout_soundfont": HELDOUT_SOUNDFONT if HELDOUT_SOUNDFONT in soundfont_paths() else None,
                    "v2": extra, "extra_captions": extra_captions}
    save_weights(trainer.model, out, info)
    log(f"saved {out}")
    return info


def _prompt_bank(cfg: TrainConfig, cache: Path, log: Log) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The prompt loss's phrasings, without any string the evaluation asks, embedded by MiniLM.

    Dropping the evaluation's own prompts keeps ``eval-encoder``'s zero-shot and single-attribute
    figures a test of phrasings the loss never saw, not a recital of the ones it trained on.
    """
    from retrieval.caption_variety import attribute_phrases
    from retrieval.evaluation.queries import ATTRIBUTE_PROMPTS, ATTRIBUTE_QUERIES, BROAD_QUERIES

    asked = {p.lower() for d in ATTRIBUTE_PROMPTS.values() for ps in d.values() for p in ps}
    asked |= {q.lower() for q, *_ in ATTRIBUTE_QUERIES} | {q.lower() for q, *_ in BROAD_QUERIES}
    phrases = attribute_phrases(tuple(TUNE_TYPES) if cfg.tune_type_head else ())
    kept = {a: {c: [p for p in ps if p.lower() not in asked] for c, ps in d.items()} for a, d in phrases.items()}
    n_all = sum(len(ps) for d in phrases.values() for ps in d.values())
    n_kept = sum(len(ps) for d in kept.values() for ps in d.values())
    log(f"prompt loss: {n_kept} phrasings ({n_all - n_kept} dropped: the evaluation asks them)")
    return prompt_bank(kept, label_names(cfg), lambda t: embed_captions(t, cache=cache))


def _init_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a weights file to warm-start from, and what the sidecar should say of them."""
    from safetensors.torch import load_file

    from retrieval.encoders.common import weights_digest

    if not path.is_file():
        raise FileNotFoundError(f"--init weights not found: {path}")
    return load_file(str(path)), {"weights": str(path), "encoder_id": f"clap-mini@{weights_digest([path])}"}


def train_text_head(cache: Path, base: Path, out: Path, *, size: int = 4500, val_size: int = 200,
                    extra_captions: int = 12, seed: int = 0, cfg: TextHeadConfig | None = None,
                    log: Log = print) -> dict[str, Any]:
    """Retrain only the text projection of ``base`` on v2's varied captions; save it at ``out``.

    The audio tower, its projection and therefore every catalog vector stay exactly as in
    ``base`` (:func:`retrieval.encoders.training.fit_text_head` says why). Uses the v2 training
    and validation caches (``train-encoder --v2 --render-only`` builds them); the clips are the
    v2 renders, the captions are the catalog's plus ``extra_captions`` varied phrasings each,
    drawn with another seed than the audio-side trainer used.
    """
    from retrieval.encoders.default import DefaultEncoder

    train_fs, val_fs = training_sets(cache, True, size=size, renders=1, val_size=val_size, seed=seed, log=log)
    enc = DefaultEncoder(base, device="cpu")
    model = enc.model
    t = time.time()
    raw = audio_window_embeddings(model, train_fs)
    # each window, and their pool as the catalog stores it (sum, then normalise)
    views = torch.nn.functional.normalize(torch.cat([raw, raw.sum(1, keepdim=True)], 1), dim=-1).numpy()
    val_audio = audio_embeddings_from_features(model, val_fs)
    log(f"embedded {len(train_fs.rows)} training clips (3 windows + pooled) and {len(val_fs.rows)} "
        f"validation clips with the frozen audio tower of {enc.id} in {time.time() - t:.0f} s")
    # other draws than the audio-side trainer's (its seed base is seed * 100_003)
    texts, caption_ids = caption_table(train_fs.rows, extra_captions, (seed + 1) * 7_000_003, True)
    t = time.time()
    vecs = embed_captions(texts, cache=cache)
    log(f"embedded {len(texts)} captions with MiniLM in {time.time() - t:.0f} s")
    embed = text_embedder(model)
    info = fit_text_head(model, views, vecs, caption_ids, texts,
                         lambda m: quick_metrics(m, val_fs, audio=val_audio, embed=embed), cfg, log=log)
    sidecar = enc.path.with_suffix(".json")
    base_info = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    info["base"] = {"weights": str(base), "encoder_id": enc.id, "best_metrics": base_info.get("best_metrics")}
    info["data"] = {"train_renders": len(train_fs.rows), "validation_renders": len(val_fs.rows),
                    "captions": len(texts), "extra_captions": extra_captions,
                    "soundfonts": list(training_soundfonts()), "v2": v2_render_args()}
    save_weights(model, out, info)
    log(f"saved {out} (audio tower identical to {enc.id})")
    return info


def training_sets(cache: Path, v2: bool, *, size: int, renders: int, val_size: int, seed: int,
                  workers: int | None = None, log: Log = print,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[FeatureSet, FeatureSet]:
    """The encoder's training and validation sets (``train[-v2]``, ``validation[-v2]`` caches).

    One place for their arguments, so every job that reads them (the full trainer, the
    text-head trainer) hits the same cache instead of rendering it again.
    """
    sfs = tuple(training_soundfonts())
    extra = v2_render_args() if v2 else {}
    suffix = "-v2" if v2 else ""

    def prog(name: str) -> Callable[[int, int], None] | None:
        return (lambda d, t: progress(name, d, t)) if progress else None

    train_fs = cached_feature_set(cache, "train" + suffix, log, size=size, seed=seed, splits=("train",),
                                  renders=renders, soundfonts=sfs, workers=workers, progress=prog("train"),
                                  **extra)
    val_fs = cached_feature_set(cache, "validation" + suffix, log, size=val_size, seed=seed + 1,
                                splits=("validation",), renders=2, soundfonts=sfs, workers=workers,
                                progress=prog("validation"), **extra)
    return train_fs, val_fs


def caption_table(rows: Sequence[dict[str, Any]], extra_captions: int, seed_base: int,
                  v2: bool) -> tuple[list[str], list[list[int]]]:
    """Every clip's captions as one flat text list and, per clip, the indexes of its own.

    The catalog's captions plus ``extra_captions`` fresh draws from the same facts (clip ``i``
    draws with seed ``seed_base + i``): more phrasings per clip.
    """
    texts: list[str] = []
    caption_ids: list[list[int]] = []
    for i, r in enumerate(rows):
        fresh = _fresh_captions(r, extra_captions, seed_base + i, v2) if extra_captions else []
        ids = []
        for c in dict.fromkeys([*r["captions"], *fresh]):
            ids.append(len(texts))
            texts.append(c)
        caption_ids.append(ids)
    return texts, caption_ids


def v2_render_args() -> dict[str, Any]:
    """How encoder v2's training and in-distribution sets are rendered (one place for both)."""
    return {"variety": "train", "production": True}


def _fresh_captions(row: dict[str, Any], n: int, seed: int, v2: bool) -> list[str]:
    if v2:
        from retrieval.caption_variety import varied_captions

        return varied_captions(facts_from_row(row), n, seed=seed)
    return training_captions(facts_from_row(row), n, seed=seed)


def evaluate_default_encoder(cache: Path, weights: Path | None = None, *, size: int = 400,
                             heldout: bool = True, seed: int = 7,
                             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The full evaluation of ``eval-encoder`` on test-split pieces, rendered twice each.

    With ``heldout`` the renders use the soundfont never used in training (no room/EQ
    augmentation, so the soundfont is the only change); otherwise the training soundfonts.
    """
    from retrieval.encoders.default import DefaultEncoder
    from retrieval.evaluation.encoder_report import encoder_report

    if heldout:
        if HELDOUT_SOUNDFONT not in soundfont_paths():
            raise RuntimeError(f"the held-out soundfont {HELDOUT_SOUNDFONT} is not installed; "
                               "run `make soundfonts` or use --soundfont train")
        sfs: tuple[str, ...] = (HELDOUT_SOUNDFONT,)
    else:
        sfs = tuple(training_soundfonts())
    fs = cached_feature_set(cache, f"test-{'heldout' if heldout else 'train-sf'}", lambda s: None,
                            size=size, seed=seed, splits=("test",), renders=2, soundfonts=sfs,
                            augment=False, paraphrases=True, progress=progress)
    enc = DefaultEncoder(weights, device="cpu")
    audio = audio_embeddings_from_features(enc.model, fs)
    return encoder_report(enc.id, sfs, audio, fs.rows, enc.embed_text)


#: The test-set renderings of ``eval-encoder --suite v2`` (test-split pieces, never trained on).
SUITE_SETS: dict[str, dict[str, Any]] = {
    # v1's held-out check: the soundfont training never used, rendered as v1 renders
    "heldout-soundfont": {"held_out_soundfont": True},
    # as training renders (training soundfonts, render variety, production chain)
    "in-distribution": {"held_out_soundfont": False, "variety": "train", "production": True},
    # our held-out synth + soundfont + arrangement: FluidSynth, MuseScore, deadpan piano
    "heldout-variant": {"held_out_soundfont": True, "variety": "heldout"},
}


def evaluate_suite(cache: Path, weights: Path | None, baseline: Path | None, *, size: int = 300,
                   seed: int = 7, log: Log = print,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Every set of :data:`SUITE_SETS` for the encoder and a baseline encoder, in one run.

    Returns ``{"sets": {set: {encoder id: report}}, "headline": {set: {encoder id: figures}},
    "drop": {encoder id: in-distribution -> heldout-variant drop}}``; each report also holds the
    random-ranking baselines beside every retrieval figure.
    """
    from retrieval.encoders.default import DefaultEncoder
    from retrieval.evaluation.encoder_report import encoder_report
    from retrieval.evaluation.encoder_v2_report import drop, headline, v2_sections

    if HELDOUT_SOUNDFONT not in soundfont_paths():
        raise RuntimeError(f"the held-out soundfont {HELDOUT_SOUNDFONT} is not installed; run `make soundfonts`")
    encoders = [DefaultEncoder(weights, device="cpu")]
    if baseline is not None and Path(baseline).resolve() != encoders[0].path.resolve():
        encoders.append(DefaultEncoder(baseline, device="cpu"))
    out: dict[str, Any] = {"sets": {}, "headline": {}, "drop": {}, "size": size, "seed": seed}
    for name, how in SUITE_SETS.items():
        sfs = (HELDOUT_SOUNDFONT,) if how["held_out_soundfont"] else tuple(training_soundfonts())
        extra = {k: v for k, v in how.items() if k != "held_out_soundfont"}
        fs = cached_feature_set(cache, f"suite-{name}", log, size=size, seed=seed, splits=("test",), renders=2,
                                soundfonts=sfs, augment=False, paraphrases=True,
                                progress=(lambda d, t, n=name: progress(n, d, t)) if progress else None, **extra)
        out["sets"][name], out["headline"][name] = {}, {}
        for enc in encoders:
            audio = audio_embeddings_from_features(enc.model, fs)
            rep = encoder_report(enc.id, sfs, audio, fs.rows, enc.embed_text)
            rep["v2"] = v2_sections(audio, fs.rows, enc.embed_text)
            out["sets"][name][enc.id] = rep
            out["headline"][name][enc.id] = headline(rep)
    for enc in encoders:
        out["drop"][enc.id] = drop(out["headline"]["in-distribution"][enc.id],
                                   out["headline"]["heldout-variant"][enc.id])
    return out
