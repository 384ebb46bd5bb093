"""Encoder throughput: a full-size random-init CLAP against the default encoder, in one run.

The full-size CLAP is ``transformers.ClapModel(ClapConfig())`` (HTSAT-tiny audio tower, 28 M
params, + RoBERTa-base text tower, 125 M): random weights cost the same as the released
``laion/clap-htsat-unfused``, so this is the price of the real model without downloading it.
It runs through :class:`retrieval.encoders.hf_clap.ClapEncoderBase`, i.e. exactly the code path
of the ``hf-clap`` backend, feature extraction included. Its text tokenizer is a word-level one
built here over the query words (about one token per word, as RoBERTa's BPE gives for plain
English queries).

Measured, torch threads = 2:
- audio seconds embedded per wall second: a batch of 8 clips of 10 s, and one 60 s track
  (11 windows of 10 s, hop 5 s); for CLAP also the model alone (log-mel computed beforehand);
- text queries per second at batch 1 and batch 64.

Usage::

    python -m benchmarks.bench_encoders            # ~2 min on 2 vCPU
    python -m benchmarks.bench_encoders --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "results"
QUERIES = [
    "a slow piano piece in a minor key", "a fast jig on the fiddle", "a string quartet",
    "solo flute melody", "a cheerful march for brass band", "a sad waltz on the accordion",
    "a choir singing a chorale", "an energetic reel with tin whistle",
]


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _word_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for q in QUERIES for w in q.split()})
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *words])}
    vocab.update({f"w{i}": len(vocab) + i for i in range(200)})  # pass the vocabulary check
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def full_size_clap(device: str = "cpu") -> Any:
    """A random-init full-size CLAP behind the ``hf-clap`` code path (no files needed)."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    from retrieval.encoders.hf_clap import ClapEncoderBase

    torch.manual_seed(0)
    model = ClapModel(ClapConfig())
    enc = ClapEncoderBase()
    # A random text tower is "collapsed" by the health check; that warning is noise here.
    logging.getLogger("retrieval.encoders.hf_clap").setLevel(logging.ERROR)
    enc._setup(model, ClapFeatureExtractor(frequency_min=50, truncation="rand_trunc"),
               _word_tokenizer(), "clap-random@full-size", device, 10.0, 5.0, 8, 77)
    return enc


def measure(enc: Any, repeats: int, model_only: bool = False) -> dict[str, float]:
    """Throughputs of one encoder: audio s/s (batch 8 x 10 s, one 60 s track), text q/s."""
    rng = np.random.default_rng(0)
    sr = enc.sample_rate
    clips = [(0.1 * rng.standard_normal(10 * sr)).astype(np.float32) for _ in range(8)]
    track = (0.1 * rng.standard_normal(60 * sr)).astype(np.float32)
    q64 = [QUERIES[i % len(QUERIES)] for i in range(64)]
    r: dict[str, float] = {}
    r["audio_s_per_s_batch8x10s"] = 80.0 / _timed(lambda: enc.embed_audio(clips), repeats)
    r["audio_s_per_s_track60s"] = 60.0 / _timed(lambda: enc.embed_audio([track]), repeats)
    if model_only:  # the tower + projection alone, log-mel precomputed
        import torch

        feats = enc.feature_extractor(clips, sampling_rate=sr, return_tensors="pt",
                                      truncation="rand_trunc", padding="repeatpad")
        x = feats["input_features"]

        def tower() -> None:
            with torch.inference_mode():
                enc.model.audio_projection(enc.model.audio_model(input_features=x).pooler_output)

        r["audio_s_per_s_batch8x10s_model_only"] = 80.0 / _timed(tower, repeats)
        r["logmel_s_per_clip"] = _timed(
            lambda: enc.feature_extractor(clips[:1], sampling_rate=sr, return_tensors="pt",
                                          truncation="rand_trunc", padding="repeatpad"),
            repeats)
    r["text_q_per_s_batch1"] = 8.0 / _timed(
        lambda: [enc.embed_text([q]) for q in QUERIES], repeats)
    r["text_q_per_s_batch64"] = 64.0 / _timed(lambda: enc.embed_text(q64), repeats)
    return r


def _default_encoder() -> tuple[Any, str | None]:
    """``load_encoder("default")`` when its module and weights exist, else ``(None, why)``."""
    from retrieval.encoders import load_encoder

    try:
        return load_encoder("default", device="cpu"), None
    except Exception as e:  # noqa: BLE001 - the CLAP numbers must survive a broken default
        return None, f"{type(e).__name__}: {e}"


def main(argv: list[str] | None = None) -> None:
    """Run the encoder benchmark: a table, and ``results/bench_encoders_t<threads>.json``."""
    p = argparse.ArgumentParser(prog="bench_encoders", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 timed repeat instead of 3")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (2 = the machine; on a CPU shared with other jobs, 1 "
                        "avoids OpenMP threads spinning against each other)")
    args, _ = p.parse_known_args(argv if argv is not None else [])
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    repeats = 1 if args.quick else 3
    t0 = time.perf_counter()
    clap = full_size_clap()
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in clap.model.parameters())
    results: dict[str, Any] = {"clap_full_random": measure(clap, repeats, model_only=True)}
    results["clap_full_random"]["construct_s"] = load_s
    results["clap_full_random"]["params_m"] = n_params / 1e6
    del clap
    default, why = _default_encoder()
    if default is not None:
        results["default"] = {"id": default.id, **measure(default, repeats)}
    else:
        results["default_skipped"] = why
    results["torch_threads"] = torch.get_num_threads()
    results["loadavg_1min_before_after"] = [load_before, os.getloadavg()[0]]

    print(f"{'metric':40s} {'CLAP full (random)':>20s} {'default':>12s} {'default/CLAP':>13s}")
    for k, v in results["clap_full_random"].items():
        d = results.get("default", {}).get(k)
        ratio = f"{d / v:13.1f}x" if isinstance(d, float) and k.endswith(("_batch1", "_batch64",
                                                                           "10s", "60s")) else ""
        dv = f"{d:12.2f}" if isinstance(d, float) else f"{'-':>12s}"
        print(f"{k:40s} {v:20.2f} {dv} {ratio}")
    if why:
        print(f"default encoder skipped: {why}")
    print(f"torch threads {results['torch_threads']}, 1-min load average before/after "
          f"{results['loadavg_1min_before_after']}")
    OUT.mkdir(exist_ok=True)
    (OUT / f"bench_encoders_t{args.threads}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
