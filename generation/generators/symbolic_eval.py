"""Which condition drives the symbolic generator best: measured on held-out catalog pieces.

For each held-out piece (validation or test split: never trained on) the query is one of its
catalog captions, and the generator makes candidates under each variant:

- **text embedding**: the caption's text embedding as the condition;
- **prior samples**: the diffusion prior's samples for the caption (what backfill passes);
- **prior mean**: the prior's regression point (its mean head, or the sampler's mean);
- **attributes only**: the null condition; only the caption's explicit words steer;
- **real render (ceiling)**: the piece's own render embedding, the training-time condition.

Every variant sees the same words (the caption's explicit attributes are forced in all), so
the differences are the embedding's. With the longest caption the words name most attributes;
with the shortest (``"An energetic piece"``) the embedding must carry them.

Scores: the encoder cosine of the rendered candidates to the held-out piece's real render
embedding (the best by the generator's own re-ranking, and the mean over candidates), and
adherence read from the generated score: its bars' meter class (duple, triple, compound: what
is heard; 2/2 and 4/4 sound alike), the mode estimated from its notes (Krumhansl-Kessler over
the melody, independent of the header token) and the header's mode token, the ensemble and
tempo class it was rendered with, each against the piece's facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generation.generators.base import GenerationRequest
from generation.generators.rerank import embed_candidates
from generation.generators.symbolic_render import score_mode

if TYPE_CHECKING:
    from retrieval.encoders.base import Encoder
    from retrieval.prior.pipeline import PriorPipeline

VARIANTS = ("text embedding", "prior samples", "prior mean", "attributes only", "real render (ceiling)")


def _targets(variant: str, prior: PriorPipeline, text_vec: np.ndarray, real: np.ndarray,
             seed: int) -> tuple[np.ndarray | None, str]:
    """(target embeddings for the request, the generator's ``condition`` option)."""
    if variant == "prior samples":
        return prior.sample(text_vec[None, :], num_samples=8, seed=seed), "targets"
    if variant == "prior mean":
        if prior.model.mean_net is not None:
            mean, _ = prior.conditional_mean(text_vec[None, :])
        else:
            _, mean = prior.sample(text_vec[None, :], num_samples=8, seed=seed, return_mean=True)
        return np.asarray(mean, np.float32).reshape(1, -1), "targets"
    if variant == "real render (ceiling)":
        return real[None, :], "targets"
    return None, "text" if variant == "text embedding" else "none"


def evaluate_variants(catalog_dir: str | Path, database_url: str, encoder: Encoder, prior: PriorPipeline, *,
                      split: str = "test", n_pieces: int = 30, n_candidates: int = 4,
                      duration_s: float = 10.0, seed: int = 0, variants: Sequence[str] = VARIANTS,
                      weights: str | Path | None = None, caption: str = "longest") -> list[dict[str, Any]]:
    """One row per variant: mean cosines and adherence rates over the held-out pieces (module doc).

    ``caption``: ``"longest"`` (the most descriptive: its words force most attributes) or
    ``"shortest"`` (``"An energetic piece"``: the embedding has to carry nearly everything).
    """
    from generation.generators.symbolic import SymbolicGenerator
    from generation.generators.symbolic_training import catalog_embeddings
    from retrieval.captions import meter_class, mode_family
    from retrieval.prior.data import load_rows

    catalog_dir = Path(catalog_dir)
    rows = [r for r in load_rows(catalog_dir) if r.get("split") == split]
    real = catalog_embeddings(catalog_dir, rows, database_url, encoder.id, encoder.dim)
    rows = [r for r in rows if r["piece_id"] in real]
    rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))[:n_pieces]]
    gens = {c: SymbolicGenerator(weights, encoder=encoder, condition=c, search_rounds=1)
            for c in ("targets", "text", "none")}
    pick = max if caption == "longest" else min
    queries = [pick(r["captions"], key=len) for r in rows]
    text_vecs = encoder.embed_text(queries)
    out = []
    for variant in variants:
        acc: dict[str, list[float]] = {k: [] for k in ("cos_best", "cos_mean", "meter", "mode", "mode_header",
                                                        "ensemble", "tempo")}
        for i, r in enumerate(rows):
            goal = real[r["piece_id"]]
            targets, cond = _targets(variant, prior, text_vecs[i], goal, seed + i)
            req = GenerationRequest(text=queries[i], target_embeddings=targets,
                                    duration_s=duration_s, n_candidates=n_candidates, seed=seed + 1000 * i)
            cands = gens[cond].generate(req)
            cos = embed_candidates(cands, encoder) @ goal
            acc["cos_best"].append(float(cos[0]))  # candidates come best first by the generator's own score
            acc["cos_mean"].append(float(cos.mean()))
            for c in cands:
                if meter_class(r.get("meter")):  # the class is what is heard: 2/2, 2/4, 4/4 sound alike
                    acc["meter"].append(float(meter_class(c.score["meter"]) == meter_class(r["meter"])))
                acc["mode"].append(float(score_mode(c.score) == mode_family(r.get("mode"))))
                acc["mode_header"].append(float(c.conditioning["header"].get("mode") == mode_family(r.get("mode"))))
                acc["ensemble"].append(float(c.conditioning["ensemble"] == r.get("ensemble")))
                acc["tempo"].append(float(c.conditioning["tempo_class"] == r.get("tempo_bucket")))
        out.append({"variant": variant, "pieces": len(rows),
                    **{k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()}})
    return out
