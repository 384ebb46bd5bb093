"""The prior's data (whole-track embeddings, stored vectors, extra captions), its mean head and
the adaptive generative ranking."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy.orm import Session, sessionmaker

from index.ingest import ingest
from index.store import AudioStore
from retrieval.embedding import make_embedding_stage
from retrieval.errors import RetrievalError
from retrieval.prior.data import embed_catalog, row_captions, stored_embeddings
from retrieval.prior.model import PriorConfig, PriorDenoiser
from retrieval.prior.pipeline import PriorPipeline, guidance_coefficients
from retrieval.prior.schedulers import make_scheduler
from retrieval.prior.training import Pairs, TrainConfig, train_prior
from retrieval.search.generative import (
    GenerativeConfig,
    adaptive_scores,
    breadth_weight,
    generative_rank,
    matrix_backend,
    mmr,
    rank_candidates,
    steer_query,
)
from tests.api.tiny_encoder import TinyEncoder

DIM = 16


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class CountingEncoder(TinyEncoder):
    """TinyEncoder that counts the audio clips it embeds (to see what the cache skipped)."""

    def __init__(self) -> None:
        super().__init__(dim=DIM)
        self.audio_calls = 0

    def embed_audio(self, waveforms):  # noqa: ANN001, ANN201 - the protocol's signature
        self.audio_calls += len(waveforms)
        return super().embed_audio(waveforms)


# ------------------------------------------------------------------------------------- data

def test_row_captions_adds_distinct_training_style_captions() -> None:
    row = {"path": "audio/x.flac", "captions": ["A jig"], "ensemble": "solo fiddle",
           "instrument_family": "strings", "tune_type": "jig", "tempo_bpm": 120.0,
           "tempo_bucket": "fast", "mode": "major", "key": "D", "meter": "6/8",
           "meter_class": "compound", "tradition": "Irish"}
    assert row_captions(row, 0) == ["A jig"]
    more = row_captions(row, 6)
    assert more[0] == "A jig" and len(more) == 7 and len(set(more)) == 7
    assert more == row_captions(row, 6)  # seeded by the path: the same on every run
    assert any("fiddle" in c.lower() for c in more[1:])


def test_embed_catalog_reuses_stored_vectors_and_caches(tmp_path: Path,
                                                        tiny_audio_dir: Path) -> None:
    enc = CountingEncoder()
    cat = embed_catalog(enc, tiny_audio_dir, tmp_path / "cache")
    n = len(cat.rows)
    assert enc.audio_calls == n and cat.audio.shape == (n, DIM)
    np.testing.assert_allclose(np.linalg.norm(cat.audio, axis=1), 1.0, atol=1e-5)
    # More captions: the audio part comes from the cache, only captions are embedded again.
    more = embed_catalog(enc, tiny_audio_dir, tmp_path / "cache", extra_captions=3)
    assert enc.audio_calls == n
    np.testing.assert_array_equal(more.audio, cat.audio)
    assert len(more.captions) > len(cat.captions)
    assert len(more.pairs("train", 64)) > len(cat.pairs("train", 64))
    # Stored vectors (content hash -> vector) replace decoding; unknown files are embedded.
    from index.store import hash_file

    first = tiny_audio_dir / cat.rows[0]["path"]
    marker = _unit(np.ones(DIM))
    fresh = CountingEncoder()
    got = embed_catalog(fresh, tiny_audio_dir, tmp_path / "cache2",
                        stored={hash_file(first): marker})
    assert fresh.audio_calls == n - 1
    np.testing.assert_allclose(got.audio[0], marker)
    np.testing.assert_allclose(got.audio[1:], cat.audio[1:], atol=1e-6)


def test_stored_embeddings_reads_the_catalog(tmp_path: Path, db_url: str,
                                             factory: sessionmaker[Session], store: AudioStore,
                                             tiny_audio_dir: Path) -> None:
    enc = TinyEncoder(DIM)
    ingest([tiny_audio_dir], factory, store, metadata=tiny_audio_dir / "metadata.jsonl",
           min_duration_s=1.0, on_batch=make_embedding_stage(enc, store), progress=False)
    stored = stored_embeddings(db_url, enc.id, DIM)
    assert len(stored) == 5
    # The stored whole-track vector of a file is what embedding the file gives.
    cat = embed_catalog(enc, tiny_audio_dir, tmp_path / "cache")
    from index.store import hash_file

    for row, vec in zip(cat.rows, cat.audio, strict=True):
        np.testing.assert_allclose(stored[hash_file(tiny_audio_dir / row["path"])], vec,
                                   atol=1e-5)
    assert stored_embeddings(db_url, "other-encoder@1", DIM) == {}


def test_stored_embeddings_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    assert stored_embeddings(f"sqlite:///{missing}", "x@1", DIM) == {}
    assert not missing.exists()


# -------------------------------------------------------------------------------- mean head

@pytest.fixture(scope="module")
def clusters() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    centres = _unit(rng.standard_normal((2, DIM)))
    conds = _unit(rng.standard_normal((2, DIM)))
    which = rng.integers(0, 2, 1000)
    audio = _unit(centres[which] + 0.2 * rng.standard_normal((1000, DIM)))
    return {"centres": centres, "conds": conds, "audio": audio, "text": conds[which]}


@pytest.fixture(scope="module")
def with_head(clusters: dict[str, np.ndarray]) -> PriorPipeline:
    torch.set_num_threads(1)
    pairs = Pairs(clusters["text"], clusters["audio"])
    config = PriorConfig(dim=DIM, width=32, depth=2, time_dim=16, dropout=0.0, mean_head=True,
                         mean_width=32)
    model, _ = train_prior(pairs, pairs, config, TrainConfig(steps=300, batch_size=128, lr=3e-3,
                                                             eval_every=100, ema_decay=0.95))
    return PriorPipeline(model, "ddim", 8)


def test_mean_head_learns_the_conditional_mean(with_head: PriorPipeline,
                                               clusters: dict[str, np.ndarray]) -> None:
    a, b = clusters["centres"]
    ca, cb = clusters["conds"]
    seeds, mean = with_head.sample(ca, num_samples=4, return_mean=True)
    assert seeds.shape == (4, DIM) and mean.shape == (DIM,)
    assert abs(float(np.linalg.norm(mean)) - 1) < 1e-5
    assert mean @ a > 0.9 and mean @ a > mean @ b + 0.5
    # Two positives: the mean lies between the clusters; a negative pushes it away from one.
    _, both = with_head.sample(np.stack([ca, cb]), num_samples=2, return_mean=True)
    assert min(both @ a, both @ b) > 0.3
    _, not_b = with_head.sample(np.stack([ca, cb]), cb, num_samples=2, return_mean=True,
                                negative_guidance=1.0)
    assert not_b @ b < both @ b - 0.2
    # mean_guidance scales the positives' pull: 0 is the unconditional mean (between the
    # clusters), 2 goes past the conditional mean, away from the other cluster.
    _, m0 = with_head.sample(ca, num_samples=2, return_mean=True, mean_guidance=0.0)
    _, m1 = with_head.sample(ca, num_samples=2, return_mean=True, mean_guidance=1.0)
    _, m2 = with_head.sample(ca, num_samples=2, return_mean=True, mean_guidance=2.0)
    np.testing.assert_allclose(m1, mean, atol=1e-6)
    assert m0 @ a < mean @ a - 0.2 and m0 @ b > mean @ b + 0.2
    assert m2 @ b < mean @ b


@torch.inference_mode()
def test_schedule_modulations_give_the_per_step_forward(with_head: PriorPipeline) -> None:
    """The sampler's precomputed time/condition part, its shared input projection and its
    guidance before the output layer change the cost, not the prediction."""
    m = with_head.model
    rng = np.random.default_rng(5)
    cond = torch.cat([m.null_cond[None], torch.from_numpy(_unit(rng.standard_normal((2, DIM))))])
    cc = m.condition(cond)
    ts = torch.tensor([999.0, 600.0, 10.0])
    mods = m.schedule_modulations(ts, cc[1])
    x = torch.from_numpy(rng.standard_normal((5, DIM)).astype(np.float32))
    coef = guidance_coefficients(torch.tensor([0.25, 0.75]), torch.zeros(0), 3.0, 0.0)
    np.testing.assert_allclose(coef.numpy(), [-2.0, 0.75, 2.25])
    assert len(mods) == 3 and len(mods[0]) == len(m.blocks)
    for i, t in enumerate(ts):
        plain = m.denoise(x.expand(3, 5, DIM), t, cc)  # [G, K, dim]
        torch.testing.assert_close(m.denoise_modulated(x, cc[0], mods[i]), plain,
                                   atol=1e-5, rtol=1e-5)
        u = plain[0]
        guided = u + 3.0 * (0.25 * (plain[1] - u) + 0.75 * (plain[2] - u))
        torch.testing.assert_close(m.denoise_modulated(x, cc[0], mods[i], coef), guided,
                                   atol=1e-4, rtol=1e-4)


def _random_pipeline(prediction_type: str) -> PriorPipeline:
    """An untrained prior whose weights are all random (no zero-initialised layers), so every
    part of the network shapes its output."""
    m = PriorDenoiser(PriorConfig(dim=DIM, width=24, depth=2, time_dim=16,
                                  prediction_type=prediction_type, mean_head=True))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return PriorPipeline(m, "ddim", 6)


@pytest.mark.parametrize(("negatives", "prediction_type"),
                         [(0, None), (2, None), (1, "epsilon"), (1, "v_prediction"),
                          (2, "sample")])
@torch.inference_mode()
def test_the_precomputed_ddim_loop_is_the_schedulers(with_head: PriorPipeline, negatives: int,
                                                     prediction_type: str | None) -> None:
    """DDIM runs from two numbers per step read off diffusers' scheduler; written out with
    ``scheduler.step`` and the plain forward, the loop must give the same samples (the trained
    prior, and random ones of every prediction type)."""
    pipe = with_head if prediction_type is None else _random_pipeline(prediction_type)
    rng = np.random.default_rng(6)
    pos = _unit(rng.standard_normal((2, DIM)))
    neg = _unit(rng.standard_normal((negatives, DIM)))
    fast = pipe.sample(pos, neg, num_samples=4, seed=11, guidance=2.5, negative_guidance=1.5,
                       num_inference_steps=6)
    m = pipe.model
    sched = make_scheduler("ddim", m.config)
    sched.set_timesteps(6)
    cc = m.condition(torch.cat([m.null_cond[None], torch.from_numpy(pos), torch.from_numpy(neg)]))
    x = pipe.initial_noise(4, 11)
    for t in sched.timesteps:
        out = m.denoise(x.expand(1 + 2 + negatives, 4, DIM), t, cc)
        u = out[0]
        guided = u + 2.5 * ((out[1] - u) + (out[2] - u)) / 2
        if negatives:
            guided = guided - 1.5 * (out[3:] - u).sum(0) / negatives
        x = sched.step(guided, t, x).prev_sample
    slow = _unit((x / m.config.scale).numpy())
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    assert ("ddim", 6) in pipe._plans  # read once per step count, then reused


def test_concurrent_ddim_samples_equal_sequential_ones(with_head: PriorPipeline) -> None:
    """The DDIM loop holds no scheduler state (nor the lock): queries sampled in parallel
    threads get exactly what they get one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(8)
    conds = _unit(rng.standard_normal((6, DIM)))
    fresh = PriorPipeline(with_head.model, "ddim", 5, with_head.card)  # empty plan cache
    jobs = [(conds[i % 3], conds[3 + i % 3], i) for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda j: fresh.sample(j[0], j[1], num_samples=3, seed=j[2]),
                                 jobs))
    for (pos, neg, seed), got in zip(jobs, parallel, strict=True):
        # (to rounding: the torch thread count is process-wide and may differ meanwhile)
        np.testing.assert_allclose(got, with_head.sample(pos, neg, num_samples=3, seed=seed,
                                                         num_inference_steps=5), atol=1e-6)


def test_mean_without_a_head_is_the_first_step_estimate(clusters: dict[str, np.ndarray]) -> None:
    pairs = Pairs(clusters["text"], clusters["audio"])
    model, _ = train_prior(pairs, None, PriorConfig(dim=DIM, width=32, depth=2, time_dim=16,
                                                    dropout=0.0),
                           TrainConfig(steps=300, batch_size=128, lr=3e-3, ema_decay=0.95))
    assert model.mean_net is None
    _, mean = PriorPipeline(model, "ddim", 8).sample(clusters["conds"][0], num_samples=8,
                                                     return_mean=True)
    assert mean @ clusters["centres"][0] > 0.8


# ---------------------------------------------------------------------------------- ranking

def test_log_ratio_prefers_the_conditions_cluster(with_head: PriorPipeline,
                                                  clusters: dict[str, np.ndarray]) -> None:
    audio, centres = clusters["audio"][:60], clusters["centres"]
    in_a = audio @ centres[0] > audio @ centres[1]
    ca, cb = clusters["conds"]
    r = with_head.log_ratio(audio, ca, timesteps=8, noises=2, seed=3)
    assert r.shape == (60,) and r.dtype == np.float32
    assert r[in_a].min() > r[~in_a].max()  # every track of the query's cluster ranks first
    np.testing.assert_array_equal(r, with_head.log_ratio(audio, ca, timesteps=8, noises=2,
                                                         seed=3))  # deterministic per seed
    # Both clusters asked for, one negated: the negated cluster scores below the other.
    steered = with_head.log_ratio(audio, np.stack([ca, cb]), cb, negative_guidance=1.0,
                                  timesteps=8, noises=2)
    assert steered[in_a].mean() > steered[~in_a].mean()
    assert with_head.log_ratio(np.zeros((0, DIM), np.float32), ca).shape == (0,)
    with pytest.raises(RetrievalError, match="positive"):
        with_head.log_ratio(audio, np.zeros((0, DIM), np.float32))
    with pytest.raises(RetrievalError, match="at least 1"):
        with_head.log_ratio(audio, ca, noises=0)


def test_likelihood_fusion_ranks_the_asked_for_cluster(with_head: PriorPipeline,
                                                       clusters: dict[str, np.ndarray]) -> None:
    audio, a = clusters["audio"][:200], clusters["centres"][0]
    neighbours, vectors = matrix_backend(audio, np.arange(500, 700))
    cfg = GenerativeConfig(fusion="likelihood", per_seed=40, likelihood_timesteps=8,
                           likelihood_noises=1)
    ids, scores, seeds = generative_rank(with_head, clusters["conds"][0], None, neighbours,
                                         vectors, 10, cfg)
    assert len(set(ids.tolist())) == 10 and seeds.shape == (8, DIM)
    assert np.mean(vectors(ids) @ a > 0.5) >= 0.9
    with pytest.raises(RetrievalError, match="likelihood"):
        rank_candidates(seeds, None, neighbours, vectors, 10, cfg)  # no scorer given
    with pytest.raises(RetrievalError, match="likelihood_noises"):
        GenerativeConfig(likelihood_noises=0)


def test_breadth_weight_and_adaptive_scores_follow_the_spread() -> None:
    assert breadth_weight(0.0, 0.4, 10) < 0.05 < 0.95 < breadth_weight(0.8, 0.4, 10)
    e = np.eye(DIM, dtype=np.float32)
    query, mean = e[0], e[1]
    vecs = _unit(np.stack([e[0] + 0.1 * e[2], e[1] + 0.1 * e[2], e[0] + e[1], e[3]]))
    cfg = GenerativeConfig()
    narrow = np.repeat(e[4][None], 4, 0)  # identical seeds: spread 0
    broad = np.stack([e[4], e[5], e[6], e[7]])  # orthogonal seeds: spread 1
    assert int(np.argmax(adaptive_scores(vecs, narrow, query, mean, cfg))) == 0  # the text
    assert int(np.argmax(adaptive_scores(vecs, broad, query, mean, cfg))) == 1  # the mean
    # reciprocal ranks instead of z-scores: the same routing, and a score that depends on the
    # order of each term only (rank 1 of the text = 1/(k+1))
    rank = GenerativeConfig(combine="rank", rrf_k=10, kde_weight=0.0)
    assert int(np.argmax(adaptive_scores(vecs, narrow, query, mean, rank))) == 0
    assert int(np.argmax(adaptive_scores(vecs, broad, query, mean, rank))) == 1
    text_only = adaptive_scores(vecs, narrow, query, mean, rank, breadth=0.0)
    np.testing.assert_allclose(sorted(text_only, reverse=True), [1 / 11, 1 / 12, 1 / 13, 1 / 14], rtol=1e-6)
    with pytest.raises(RetrievalError, match="combine"):
        GenerativeConfig(combine="max")  # type: ignore[arg-type]
    with pytest.raises(RetrievalError, match="rrf_k"):
        GenerativeConfig(rrf_k=-1)  # 1 / (k + rank) would divide by zero at rank 1
    with pytest.raises(RetrievalError, match="mean_guidance"):
        GenerativeConfig(mean_guidance=-1.0)
    with pytest.raises(RetrievalError, match="steps"):
        GenerativeConfig(steps=0)


def test_steer_query_is_2q_minus_neg_for_weight_1() -> None:
    q, n = np.eye(DIM, dtype=np.float32)[:2]
    np.testing.assert_allclose(steer_query(q, n[None], 1.0), _unit(2 * q - n), atol=1e-6)
    assert steer_query(q, None, 1.0) is q


def test_windowed_mmr_is_independent_of_how_many_are_asked() -> None:
    rng = np.random.default_rng(0)
    vecs = _unit(rng.standard_normal((40, DIM)))
    scores = np.sort(rng.random(40))[::-1]
    ten = mmr(scores, vecs, 10, 0.5, window=5)
    assert mmr(scores, vecs, 25, 0.5, window=5)[:10].tolist() == ten.tolist()
    # window 1: novelty can never jump the queue, the order is the score order
    assert mmr(scores, vecs, 10, 0.0, window=1).tolist() == list(range(10))
    # each pick comes from the best `window` remaining: never below rank pick + window
    assert all(p < i + 5 for i, p in enumerate(ten.tolist()))


def test_adaptive_ranking_pages_do_not_overlap(with_head: PriorPipeline,
                                               clusters: dict[str, np.ndarray]) -> None:
    audio = clusters["audio"][:200]
    neighbours, vectors = matrix_backend(audio, np.arange(500, 700))
    ca, a = clusters["conds"][0], clusters["centres"][0]
    seeds, mean = with_head.sample(ca, num_samples=8, return_mean=True)
    # In a joint space the text point leans toward its audio: model that with a + ca.
    query = _unit(a + ca)
    cfg = GenerativeConfig(per_seed=40)
    first, scores = rank_candidates(seeds, query, neighbours, vectors, 10, cfg, mean)
    both, _ = rank_candidates(seeds, query, neighbours, vectors, 20, cfg, mean)
    assert both[:10].tolist() == first.tolist() and len(set(both.tolist())) == 20
    assert scores.max() <= 1.0 + 1e-6
    assert np.mean(vectors(first) @ a > 0.5) >= 0.9  # the page is the asked-for cluster


def test_specificity_measures_how_far_the_query_moves_the_mean(
        with_head: PriorPipeline, clusters: dict[str, np.ndarray]) -> None:
    """A request for one cluster moves the mean toward it; one spanning both (the broad
    request of this toy catalog) leaves it near the unconditional mean."""
    ca, cb = clusters["conds"]
    one, both = with_head.specificity(ca), with_head.specificity(np.stack([ca, cb]))
    assert one > 0.1 and with_head.specificity(cb) > 0.1
    assert both < one / 4
    with pytest.raises(RetrievalError, match="positive"):
        with_head.specificity(np.zeros((0, DIM), np.float32))
    with pytest.raises(RetrievalError, match="breadth"):
        GenerativeConfig(breadth="width")  # type: ignore[arg-type]


def test_specificity_breadth_decides_between_text_point_and_mean(
        with_head: PriorPipeline, clusters: dict[str, np.ndarray]) -> None:
    """breadth="specificity" sets the mean's weight from the specificity: a centre far above
    every query's makes every query broad (the mean ranks), far below makes it narrow (the
    text point ranks). Here the text point is unrelated to the audio clusters."""
    audio = clusters["audio"][:300]
    neighbours, vectors = matrix_backend(audio)
    ca, a = clusters["conds"][0], clusters["centres"][0]
    base = GenerativeConfig(breadth="specificity", kde_weight=0.0, mmr_lambda=None, per_seed=60)
    broad, _, _ = generative_rank(with_head, ca[None], None, neighbours, vectors, 10,
                                  replace(base, specificity_center=100.0))
    narrow, _, _ = generative_rank(with_head, ca[None], None, neighbours, vectors, 10,
                                   replace(base, specificity_center=-100.0))
    assert np.all(vectors(broad) @ a > 0.5)  # the mean's cluster
    by_text = np.argsort(-(audio @ ca), kind="stable")[:10]
    assert set(narrow.tolist()) <= set(np.argsort(-(audio @ ca))[:60].tolist())
    assert narrow[0] == by_text[0] and set(narrow.tolist()) != set(broad.tolist())


def test_search_service_caches_text_embeddings() -> None:
    from index.vectors import VectorIndex
    from retrieval.search import SearchConfig, SearchService, TrackMeta, TrackTable

    class CountingText(TinyEncoder):
        def __init__(self) -> None:
            super().__init__(dim=DIM)
            self.texts: list[str] = []

        def embed_text(self, texts):  # noqa: ANN001, ANN201 - the protocol's signature
            self.texts.extend(texts)
            return super().embed_text(texts)

    enc = CountingText()
    ids = np.arange(1, 21, dtype=np.int64)
    vecs = _unit(np.random.default_rng(0).standard_normal((20, DIM)))
    service = SearchService(enc, VectorIndex.build(enc.id, ids, vecs, factory="Flat"),
                            TrackTable(TrackMeta(id=int(i)) for i in ids),
                            SearchConfig(text_cache_size=2))
    first = service.embed_texts(["a jig", "fiddle"])
    np.testing.assert_allclose(first, TinyEncoder(DIM).embed_text(["a jig", "fiddle"]))
    again = service.embed_texts(["fiddle", "a jig"])
    np.testing.assert_array_equal(again, first[::-1])
    assert sorted(enc.texts) == ["a jig", "fiddle"]  # the second call hit the cache
    again[0] = 0  # callers get copies: the cache is not modified through them
    np.testing.assert_array_equal(service.embed_texts(["fiddle"])[0], first[1])
    service.embed_texts(["a reel"])  # size 2: the least recently used ("a jig") goes
    service.embed_texts(["a jig"])
    assert enc.texts.count("a jig") == 2 and enc.texts.count("fiddle") == 1
    assert service.search_text("a reel").hits and enc.texts.count("a reel") == 1


def test_broad_queries_can_be_diversified_more() -> None:
    from retrieval.errors import RetrievalError

    with pytest.raises(RetrievalError, match="mmr_lambda_broad"):
        GenerativeConfig(mmr_lambda_broad=1.5)
    rng = np.random.default_rng(1)
    audio = _unit(rng.standard_normal((120, DIM)))
    neighbours, vectors = matrix_backend(audio)
    query = audio[0]
    base = GenerativeConfig(mmr_lambda=1.0, mmr_window=30, kde_weight=0.0)
    more = GenerativeConfig(mmr_lambda=1.0, mmr_lambda_broad=0.0, mmr_window=30, kde_weight=0.0)
    narrow = np.repeat(query[None], 4, 0)  # spread 0: lambda stays at 1 (pure relevance)
    broad = _unit(rng.standard_normal((4, DIM)))  # spread ~1: lambda goes to 0 (novelty)
    same = rank_candidates(narrow, query, neighbours, vectors, 10, base)[0]
    assert rank_candidates(narrow, query, neighbours, vectors, 10, more)[0].tolist() == same.tolist()
    plain = rank_candidates(broad, query, neighbours, vectors, 10, base)[0]
    spread = rank_candidates(broad, query, neighbours, vectors, 10, more)[0]
    ild = lambda ids: float(1 - (vectors(ids) @ vectors(ids).T)[np.triu_indices(10, 1)].mean())  # noqa: E731
    assert ild(spread) > ild(plain)


def test_paired_bootstrap_interval() -> None:
    from retrieval.evaluation.metrics import paired_bootstrap, paired_differences

    same = paired_bootstrap([0.2, 0.5, 0.9], [0.2, 0.5, 0.9])
    assert same["diff"] == same["lo"] == same["hi"] == 0.0 and same["queries"] == 3
    shifted = paired_bootstrap([0.3, 0.6, 1.0], [0.2, 0.5, 0.9])
    assert shifted["lo"] == pytest.approx(0.1) and shifted["hi"] == pytest.approx(0.1)
    mixed = paired_bootstrap([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 0])
    assert mixed["lo"] < 0 < mixed["hi"] and mixed["diff"] == pytest.approx(1 / 6)
    assert np.isnan(paired_bootstrap([], [])["diff"])
    results = {m: {"per_query": {"broad": {"nDCG@10": v}}}
               for m, v in (("generative", [0.5, 0.7]), ("text", [0.4, 0.6]))}
    d = paired_differences(results)
    assert list(d) == ["text"] and d["text"]["broad nDCG@10"]["diff"] == pytest.approx(0.1)


def test_average_results_is_the_mean_over_sampling_seeds() -> None:
    from retrieval.evaluation.prior_report import average_results

    def run(c: float, b: float) -> dict:
        sets = {"captions": {"nDCG@10": c, "ILD": 0.3}, "paraphrases": {"nDCG@10": 0.1, "ILD": 0.4},
                "attributes": {"nDCG@10": 0.8, "ILD": 0.5},
                "broad": {"nDCG@10": b, "ILD": 0.5, "facet_coverage": b / 2}}
        return {**sets, "broad_per_query": {"Irish music": b},
                "per_query": {"captions": {"nDCG@10": [c, 1 - c], "ILD": [0.3, 0.3]},
                              "broad": {"nDCG@10": [b], "ILD": [0.5], "facet_coverage": [b / 2]}}}

    avg = average_results([run(0.2, 0.6), run(0.4, 1.0)])
    assert avg["runs"] == 2
    assert avg["captions"]["nDCG@10"] == pytest.approx(0.3)
    assert avg["broad"]["facet_coverage"] == pytest.approx(0.4)
    assert avg["broad_per_query"]["Irish music"] == pytest.approx(0.8)
    # per-query values are averaged query by query (what the paired bootstrap compares)
    assert avg["per_query"]["captions"]["nDCG@10"] == pytest.approx([0.3, 0.7])
    assert avg["spread"]["broad nDCG@10"] == pytest.approx(0.2)
    assert avg["spread"]["captions ILD"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        average_results([])


def test_broad_figures_of_the_original_twenty_queries_are_kept_apart() -> None:
    """The forty added broad queries join the mean; "first 20" stays the original set's."""
    from retrieval.evaluation.metrics import EvalSet
    from retrieval.evaluation.prior_report import evaluate
    from retrieval.evaluation.queries import BROAD_QUERIES

    assert len(BROAD_QUERIES) == 60 and len({q for q, *_ in BROAD_QUERIES}) == 60
    # Irish rows answer "Irish music" (original) and "music from Ireland" (added); German
    # rows answer "German music" (added) only.
    rows = [{"piece_id": f"p{i}", "captions": [f"tune {i}"], "tradition": "Irish" if i < 4 else "Baroque",
             "region": "Ireland" if i < 4 else "Germany", "tune_type": "jig" if i % 2 else "reel"}
            for i in range(8)]
    rng = np.random.default_rng(0)
    es = EvalSet(_unit(rng.normal(size=(8, DIM))), rows)

    def embed_text(texts: list[str]) -> np.ndarray:
        return _unit(np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=DIM)
                                  for t in texts]))

    # a ranker that always lists the German rows first: perfect for "German music", worst for
    # the Irish queries
    order = np.array([4, 5, 6, 7, 0, 1, 2, 3])
    res = evaluate(es, embed_text, {"fixed": lambda q, t: order}, [r["captions"][0] for r in rows])["fixed"]
    asked = set(res["broad_per_query"])
    assert {"Irish music", "music from Ireland", "German music"} <= asked
    per_query = dict(zip(res["broad_per_query"], res["per_query"]["broad"]["nDCG@10"], strict=True))
    assert per_query["German music"] == pytest.approx(1.0) and per_query["Irish music"] < 1.0
    first = [v for q, v in per_query.items() if q in {q for q, *_ in BROAD_QUERIES[:20]}]
    assert res["broad"]["nDCG@10 first 20"] == pytest.approx(np.mean(first))
    assert res["broad"]["nDCG@10 first 20"] < res["broad"]["nDCG@10"]


def test_attribute_figures_of_the_original_nineteen_queries_are_kept_apart() -> None:
    """The forty added attribute queries join the mean; "first 19" stays the encoder
    evaluation's set."""
    from retrieval.evaluation.metrics import EvalSet
    from retrieval.evaluation.prior_report import evaluate
    from retrieval.evaluation.queries import (
        ATTRIBUTE_QUERIES,
        BROAD_QUERIES,
        SINGLE_ATTRIBUTE_QUERIES,
    )

    assert len(ATTRIBUTE_QUERIES) == 59 and len({q for q, *_ in ATTRIBUTE_QUERIES}) == 59
    assert ATTRIBUTE_QUERIES[:19] == SINGLE_ATTRIBUTE_QUERIES
    assert not {q for q, *_ in ATTRIBUTE_QUERIES} & {q for q, *_ in BROAD_QUERIES}
    # rows 0-3 are jigs (original "a jig"), rows 4-7 slip jigs (added "a slip jig")
    rows = [{"piece_id": f"p{i}", "captions": [f"tune {i}"],
             "tune_type": "jig" if i < 4 else "slip jig"} for i in range(8)]
    es = EvalSet(_unit(np.random.default_rng(0).normal(size=(8, DIM))), rows)

    def embed_text(texts: list[str]) -> np.ndarray:
        return _unit(np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=DIM)
                               for t in texts]))

    order = np.array([4, 5, 6, 7, 0, 1, 2, 3])  # slip jigs first: perfect for the added query
    res = evaluate(es, embed_text, {"fixed": lambda q, t: order}, [r["captions"][0] for r in rows])["fixed"]
    per_query = res["per_query"]["attributes"]["nDCG@10"]
    assert len(per_query) == 2  # only the two queries with relevant rows are asked
    assert res["attributes"]["nDCG@10 first 19"] < 1.0
    assert max(per_query) == pytest.approx(1.0)
    assert res["attributes"]["nDCG@10"] == pytest.approx(np.mean(per_query))
    assert res["attributes"]["nDCG@10 first 19"] < res["attributes"]["nDCG@10"]


def test_negative_steering_reports_what_is_removed_and_what_is_kept() -> None:
    """A negative that removes its attribute by leaving the request scores low on "kept"."""
    from retrieval.evaluation.metrics import EvalSet
    from retrieval.evaluation.prior_report import negative_steering
    from retrieval.evaluation.queries import NEGATIVE_KEEPS, NEGATIVE_QUERIES

    assert set(NEGATIVE_KEEPS) == {q for q, *_ in NEGATIVE_QUERIES}
    # rows 0-9: Irish fiddle tunes; 10-19: Irish flute tunes; 20-29: German songs, no fiddle
    rows = ([{"tradition": "Irish", "instruments": ["fiddle"]}] * 10
            + [{"tradition": "Irish", "instruments": ["flute"]}] * 10
            + [{"tradition": "German folk", "instruments": ["voice"]}] * 10)
    es = EvalSet(_unit(np.random.default_rng(0).normal(size=(30, DIM))), rows)

    def embed_text(texts: list[str]) -> np.ndarray:
        return _unit(np.random.default_rng(len(texts)).normal(size=(len(texts), DIM)))

    def steers_well(q: np.ndarray, neg: np.ndarray | None) -> np.ndarray:
        return np.arange(30) if neg is None else np.r_[10:20, 0:10, 20:30]

    def changes_subject(q: np.ndarray, neg: np.ndarray | None) -> np.ndarray:
        return np.arange(30) if neg is None else np.r_[20:30, 0:20]

    good = negative_steering(es, embed_text, [steers_well])["Irish dance music / not fiddle"]
    bad = negative_steering(es, embed_text, [changes_subject])["Irish dance music / not fiddle"]
    assert good["before"] == bad["before"] == 1.0
    assert good["after"] == bad["after"] == 0.0  # both remove the fiddle
    assert good["kept_before"] == 1.0 and good["kept_after"] == 1.0
    assert bad["kept_after"] == 0.0  # but only one still answers "Irish dance music"


def test_selection_rule_and_sweep_parsing() -> None:
    from retrieval.evaluation.sweep import MemoPrior, parse_sweep, select_setting

    def res(c: float, b: float, ild: float, cov: float) -> dict:
        return {"captions": {"nDCG@10": c}, "paraphrases": {"nDCG@10": 0.1}, "attributes": {"nDCG@10": 0.8},
                "broad": {"nDCG@10": b, "ILD": ild, "facet_coverage": cov}}

    text, reg = res(0.5, 0.6, 0.45, 0.40), res(0.4, 0.7, 0.35, 0.42)
    found = {"relevant but dull": res(0.5, 0.7, 0.30, 0.50),  # not more diverse than the regression
             "diverse": res(0.49, 0.68, 0.40, 0.45),  # worst gap -0.02 (broad)
             "more diverse, less relevant": res(0.45, 0.69, 0.44, 0.48)}  # worst gap -0.05 (captions)
    winner, rows = select_setting(found, text, reg)
    assert winner == "diverse"
    assert [r["setting"] for r in rows] == ["diverse", "more diverse, less relevant", "relevant but dull"]
    assert rows[0]["worst gap"] == pytest.approx(-0.02) and rows[-1]["passes"] is False
    assert select_setting({"dull": found["relevant but dull"]}, text, reg)[0] is None

    combos = parse_sweep(["combine=z,rank", "mmr-lambda=0.8,none"])
    assert combos == [{"combine": "z", "mmr_lambda": 0.8}, {"combine": "z", "mmr_lambda": None},
                      {"combine": "rank", "mmr_lambda": 0.8}, {"combine": "rank", "mmr_lambda": None}]
    for bad in ("mmr_lambda", "colour=red", "kde_weight=", "kde_weight=x"):
        with pytest.raises(ValueError):
            parse_sweep([bad])
    with pytest.raises(ValueError, match="twice"):
        parse_sweep(["seeds=4", "seeds=8"])
    # Sampling settings sweep too (their draws are not shared, the memo keys on them).
    assert parse_sweep(["steps=6,8", "mean_guidance=1.5"]) == [{"steps": 6, "mean_guidance": 1.5},
                                                               {"steps": 8, "mean_guidance": 1.5}]

    class Counting:
        dim = DIM
        calls = 0

        def sample(self, positives, negatives=None, **kw):  # noqa: ANN001, ANN003, ANN201
            Counting.calls += 1
            return np.full((kw["num_samples"], DIM), float(kw["seed"]), np.float32)

    memo = MemoPrior(Counting())
    q = _unit(np.ones((1, DIM)))
    a = memo.sample(q, None, num_samples=2, seed=0)
    assert memo.sample(q.copy(), None, num_samples=2, seed=0) is a and Counting.calls == 1
    assert memo.sample(q, None, num_samples=2, seed=1)[0, 0] == 1.0 and Counting.calls == 2
    assert memo.dim == DIM  # everything else is the wrapped prior's
