"""The diffusion prior: every scheduler's full loop, determinism, guidance, training, fusion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from index.vectors import VectorIndex
from retrieval.prior import prior_weights_path
from retrieval.prior.model import PriorConfig, PriorDenoiser
from retrieval.prior.pipeline import PriorPipeline
from retrieval.prior.schedulers import SCHEDULERS
from retrieval.prior.training import Pairs, TrainConfig, save_prior, train_prior
from retrieval.search import SearchOptions, SearchService, TrackMeta, TrackTable
from retrieval.search.generative import (
    GenerativeConfig,
    fuse,
    generative_search,
    matrix_backend,
    mmr,
    rank_candidates,
    seed_spread,
)
from tests.api.tiny_encoder import TinyEncoder

DIM = 16


@pytest.fixture(autouse=True, scope="module")
def _one_thread():  # noqa: ANN202
    """Tiny models: one thread is faster, and the CPU is shared with the rest of the suite."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _tiny(width: int = 8, prediction_type: str = "sample") -> PriorDenoiser:
    torch.manual_seed(0)
    return PriorDenoiser(PriorConfig(dim=DIM, width=width, depth=2, time_dim=8,
                                     prediction_type=prediction_type))


@pytest.fixture(scope="module")
def clusters() -> dict[str, np.ndarray]:
    """Two audio clusters A and B; captions "A", "B" and an ambiguous "A or B"."""
    rng = np.random.default_rng(0)
    centres = _unit(rng.standard_normal((2, DIM)))
    conds = _unit(rng.standard_normal((3, DIM)))  # A, B, A-or-B
    which = rng.integers(0, 2, 1200)
    audio = _unit(centres[which] + 0.15 * rng.standard_normal((1200, DIM)))
    ambiguous = rng.random(1200) < 0.5
    text = np.where(ambiguous[:, None], conds[2], conds[which])
    return {"centres": centres, "conds": conds, "audio": audio, "text": text.astype(np.float32)}


@pytest.fixture(scope="module")
def trained(clusters: dict[str, np.ndarray]) -> tuple[PriorDenoiser, dict]:
    pairs = Pairs(clusters["text"], clusters["audio"])
    config = PriorConfig(dim=DIM, width=32, depth=2, time_dim=16, dropout=0.0)
    return train_prior(pairs, pairs, config, TrainConfig(steps=300, batch_size=128, lr=3e-3,
                                                         eval_every=100, ema_decay=0.95))


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_every_scheduler_runs_a_full_loop(scheduler: str, prediction_type: str) -> None:
    pipe = PriorPipeline(_tiny(prediction_type=prediction_type), scheduler, 6)
    pos = _unit(np.random.default_rng(1).standard_normal((2, DIM)))
    out = pipe.sample(pos, pos[:1], num_samples=3, guidance=2.0)
    assert out.shape == (3, DIM) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("scheduler", ["ddim", "dpm"])
def test_a_seed_is_deterministic_whatever_k(scheduler: str) -> None:
    pipe = PriorPipeline(_tiny(), scheduler, 5)
    pos = _unit(np.ones((1, DIM)))
    four = pipe.sample(pos, num_samples=4, seed=10)
    np.testing.assert_array_equal(four, pipe.sample(pos, num_samples=4, seed=10))
    # seed 10 + i is sample i: the third of these is the first of a call seeded 12
    np.testing.assert_allclose(four[2], pipe.sample(pos, num_samples=1, seed=12)[0], atol=1e-5)
    assert not np.allclose(four[0], four[1])


def test_training_lowers_the_loss(trained: tuple[PriorDenoiser, dict]) -> None:
    _, history = trained
    loss = history["loss"]
    assert np.mean(loss[-30:]) < 0.7 * np.mean(loss[:30])
    assert history["best_step"] > 0


def test_condition_and_negative_guidance_steer(trained: tuple[PriorDenoiser, dict],
                                               clusters: dict[str, np.ndarray]) -> None:
    model, _ = trained
    pipe = PriorPipeline(model, "ddim", 10)
    a, b = clusters["centres"]
    ca, cb, cab = clusters["conds"]
    on_a = pipe.sample(ca, num_samples=16, guidance=2.0)
    assert (on_a @ a).mean() > 0.8 > (on_a @ b).mean()
    plain = pipe.sample(cab, num_samples=32, guidance=1.0)
    steered = pipe.sample(cab, cb, num_samples=32, guidance=1.0, negative_guidance=2.0)
    share_b = lambda s: float(np.mean((s @ b) > (s @ a)))  # noqa: E731
    assert share_b(plain) > 0.2  # the ambiguous caption reaches both clusters...
    assert share_b(steered) < share_b(plain) / 2  # ...and "not B" takes most of B away
    assert seed_spread(plain) > seed_spread(on_a)  # ambiguity shows as spread


def test_save_and_load_round_trip(tmp_path, trained: tuple[PriorDenoiser, dict]) -> None:
    model, _ = trained
    path = prior_weights_path("tiny-test@16", tmp_path)
    assert path.name == "prior-tiny-test_16.safetensors"
    save_prior(model, path, {"encoder_id": "tiny-test@16",
                             "sampling": {"scheduler": "dpm", "steps": 7, "guidance": 1.5}})
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["config"]["dim"] == DIM and card["parameters"] == model.num_parameters()
    pipe = PriorPipeline.from_pretrained(path)
    assert (pipe.scheduler_name, pipe.num_inference_steps, pipe.encoder_id) == (
        "dpm", 7, "tiny-test@16")
    ref = PriorPipeline(model, "dpm", 7).sample(np.ones(DIM), num_samples=2, guidance=1.5)
    np.testing.assert_allclose(pipe.sample(np.ones(DIM), num_samples=2), ref, atol=1e-6)


def test_fuse_and_mmr() -> None:
    ids, scores = fuse([np.array([1, 2, 3]), np.array([3, 2, 9])], [1.0, 1.0], rrf_k=1.0)
    assert ids.tolist()[:2] == [3, 2] and set(ids.tolist()) == {1, 2, 3, 9}
    assert np.all(np.diff(scores) <= 0)
    vecs = _unit(np.array([[1, 0], [1, 0.01], [0, 1]], np.float32))
    assert mmr(np.array([1.0, 0.99, 0.5]), vecs, 2, 0.5).tolist() == [0, 2]


def test_generative_ranking_returns_k_unique_ids(trained: tuple[PriorDenoiser, dict],
                                                 clusters: dict[str, np.ndarray]) -> None:
    pipe = PriorPipeline(trained[0], "ddim", 8)
    audio = clusters["audio"][:300]
    neighbours, vectors = matrix_backend(audio, np.arange(1000, 1300))
    cab = clusters["conds"][2]
    seeds = pipe.sample(cab, num_samples=8)
    for fusion in ("rrf", "mean_sim", "max_sim"):
        ids, scores = rank_candidates(seeds, cab, neighbours, vectors, 10,
                                      GenerativeConfig(fusion=fusion, per_seed=20))
        assert len(ids) == 10 == len(set(ids.tolist()))
        assert set(ids.tolist()) <= set(range(1000, 1300)) and scores.max() <= 1.0 + 1e-6


def test_generative_search_through_the_service(tmp_path, trained: tuple[PriorDenoiser, dict],
                                               clusters: dict[str, np.ndarray]) -> None:
    model, _ = trained
    enc = TinyEncoder(DIM)
    ids = np.arange(1, 201, dtype=np.int64)
    index = VectorIndex.build(enc.id, ids, clusters["audio"][:200], factory="Flat")
    table = TrackTable(TrackMeta(id=int(i), collection="even" if i % 2 else "odd") for i in ids)
    service = SearchService(enc, index, table)
    pipe = PriorPipeline(model, "ddim", 6, card={"encoder_id": enc.id})
    r = generative_search(service, pipe, ["a lively reel", 5], ["a slow air"],
                          options=SearchOptions(k=7), config=GenerativeConfig(seeds=4))
    assert len(r.ids) == 7 == len(set(r.ids.tolist())) and 5 not in r.ids.tolist()
    assert r.seeds.shape == (4, DIM) and 0.0 <= r.spread <= 2.0
    # the verdict reads each seed's nearest catalog track (what the ranking already searched)
    # (track 5 is an example, never a candidate: row 4 is not a neighbour)
    nn = (r.seeds @ np.delete(clusters["audio"][:200], 4, axis=0).T).max(1)
    assert r.weak is not None and r.weak_match is r.weak.weak
    assert r.weak.signals["prior_nn"] == pytest.approx(float(nn.mean()), abs=1e-4)
    assert r.weak.signals["top1"] >= r.best_score - 1e-6  # the whole pool, not just the page
    page2 = generative_search(service, pipe, ["a lively reel", 5], ["a slow air"],
                              options=SearchOptions(k=7, offset=7),
                              config=GenerativeConfig(seeds=4))
    assert not set(page2.ids.tolist()) & set(r.ids.tolist())
    from retrieval.search import Filters
    only = generative_search(service, pipe, ["a reel"], options=SearchOptions(
        k=5, filters=Filters(collection=("odd",))), config=GenerativeConfig(seeds=3))
    assert all(i % 2 == 0 for i in only.ids.tolist())
