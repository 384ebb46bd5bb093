"""The search service: filters against brute force, full pages, diversity, paging, modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from index.models import Base, Embedding, Track
from index.vectors import VectorIndex
from retrieval.search import (
    Filters,
    InvalidQueryError,
    SearchConfig,
    SearchOptions,
    SearchService,
    TrackMeta,
    TrackNotFoundError,
    TrackTable,
)
from tests.api.tiny_encoder import TinyEncoder

DIM = 32
N = 4000
COLLECTIONS = ["oneill", "ryan", "bach", "essen"]


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    """Points of one fixed mixture (``seed`` picks the draws): queries resemble the catalog."""
    centres = np.random.default_rng(0).standard_normal((40, DIM))
    rng = np.random.default_rng(seed + 100)
    x = centres[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _meta(i: int, rng: np.random.Generator) -> TrackMeta:
    return TrackMeta(
        id=i, collection=COLLECTIONS[i % 4], tags=("reel",) if i % 3 == 0 else ("air", "slow"),
        instruments=("fiddle",) if i % 5 else ("flute", "harp"), key="D" if i % 2 else "G",
        mode="minor" if i % 7 == 0 else "major", meter="4/4" if i % 2 else "6/8",
        origin="generated" if i % 50 == 0 else "catalog", artist=f"artist{i % 13}",
        piece_id=f"piece{i // 4}", tempo_bpm=None if i % 11 == 0 else float(60 + i % 120),
        duration_s=float(5 + i % 60))


@pytest.fixture(scope="module", params=["Flat", "HNSW32"])
def service(request: pytest.FixtureRequest) -> SearchService:
    rng = np.random.default_rng(0)
    ids = np.arange(1, N + 1, dtype=np.int64)
    x = _vectors(N)
    index = VectorIndex.build("tiny-test@32", ids, x, factory=request.param)
    table = TrackTable(_meta(int(i), rng) for i in ids)
    svc = SearchService(TinyEncoder(DIM), index, table, SearchConfig(weak_match_threshold=0.5))
    svc.vectors = x  # the truth for brute-force checks
    return svc


def _brute(svc: SearchService, q: np.ndarray, f: Filters, k: int,
           exclude: set[int] = frozenset()) -> list[int]:
    allowed = svc.table.match(f)
    ids = np.arange(1, N + 1)
    mask = np.isin(ids, allowed) if allowed is not None else np.ones(N, bool)
    mask &= ~np.isin(ids, list(exclude))
    mask &= np.array([int(i) in svc.table for i in ids])
    scores = svc.vectors @ q
    order = np.argsort(-scores, kind="stable")
    return [int(ids[j]) for j in order if mask[j]][:k]


FILTERS = [
    Filters(),
    Filters(collection=("ryan",)),                                    # 25%: over-fetch
    Filters(collection=("Bach",), mode=("minor",)),                  # ~3.6%: grown k
    Filters(instruments=("harp",), key=("g",), tempo_min=100, tempo_max=120),  # selective
    Filters(tags=("reel",), origin=("generated",)),                  # very selective
    Filters(duration_min=60, duration_max=64),                        # 1 value: exact subset
    Filters(meter=("6/8",), artist=("artist3", "artist4")),
]


@pytest.mark.parametrize("f", FILTERS)
def test_filtered_search_matches_brute_force_with_full_pages(service: SearchService,
                                                             f: Filters) -> None:
    q = _vectors(5, seed=9)
    for row in q:
        res = service.search_vector(row, SearchOptions(k=20, filters=f))
        truth = _brute(service, row, f, 20)
        got = [h.track_id for h in res.hits]
        assert len(got) == min(20, len(truth)), (res.strategy, len(got))
        assert all(service.table.match(f) is None or t in service.table.match(f) for t in got)
        overlap = len(set(got) & set(truth)) / max(1, len(truth))
        exact_path = res.strategy == "exact-subset" or service.index.is_exact
        assert overlap == 1.0 if exact_path else overlap >= 0.9, (res.strategy, overlap)
        scores = [h.score for h in res.hits]
        assert scores == sorted(scores, reverse=True)


def test_selective_filter_uses_exact_subset(service: SearchService) -> None:
    f = Filters(tags=("reel",), origin=("generated",))
    res = service.search_vector(_vectors(1, 3)[0], SearchOptions(k=10, filters=f))
    assert res.strategy == "exact-subset"
    assert len(res.hits) == min(10, len(service.table.match(f)))


def test_exclusion_and_pagination(service: SearchService) -> None:
    q = _vectors(1, seed=5)[0]
    first = service.search_vector(q, SearchOptions(k=10))
    second = service.search_vector(q, SearchOptions(k=10, offset=10))
    both = service.search_vector(q, SearchOptions(k=20))
    ids = [h.track_id for h in first.hits + second.hits]
    assert ids == [h.track_id for h in both.hits]
    seen = frozenset(h.track_id for h in first.hits)
    fresh = service.search_vector(q, SearchOptions(k=10, exclude_ids=seen))
    assert not seen & {h.track_id for h in fresh.hits}
    assert len(fresh.hits) == 10


def test_diversity_caps_and_mmr(service: SearchService) -> None:
    q = _vectors(1, seed=6)[0]
    capped = service.search_vector(q, SearchOptions(k=15, max_per_piece=1, max_per_artist=2))
    pieces = [service.table.get(h.track_id).piece_id for h in capped.hits]
    artists = [service.table.get(h.track_id).artist for h in capped.hits]
    assert len(set(pieces)) == len(pieces) == 15
    assert max(artists.count(a) for a in artists) <= 2
    plain = service.search_vector(q, SearchOptions(k=10))
    mmr = service.search_vector(q, SearchOptions(k=10, mmr_lambda=0.3))
    assert mmr.hits[0].track_id == plain.hits[0].track_id

    def spread(hits: list) -> float:
        v = service.vectors[[h.track_id - 1 for h in hits]]
        return float((v @ v.T)[np.triu_indices(len(v), 1)].mean())

    assert spread(mmr.hits) < spread(plain.hits)


def test_modes_and_weak_match(service: SearchService) -> None:
    sim = service.similar(42, SearchOptions(k=5))
    assert 42 not in [h.track_id for h in sim.hits] and len(sim.hits) == 5
    assert not sim.weak_match
    rec = service.recommend([42, 43], [44], "average_vector", SearchOptions(k=5))
    assert not {42, 43, 44} & {h.track_id for h in rec.hits}
    best = service.recommend([42, "a slow air"], [44], "best_score", SearchOptions(k=5))
    assert len(best.hits) == 5 and not {42, 44} & {h.track_id for h in best.hits}
    text = service.search_text("unrelated words entirely", SearchOptions(k=3))
    assert text.weak_match == (text.best_score < 0.5)
    strict = SearchService(service.encoder, service.index, service.table,
                           SearchConfig(weak_match_threshold=0.99))
    assert strict.similar(42, SearchOptions(k=5)).weak_match
    with pytest.raises(TrackNotFoundError, match="999999"):
        service.similar(999_999)
    with pytest.raises(InvalidQueryError, match="k must be"):
        service.search_text("x", SearchOptions(k=0))
    with pytest.raises(InvalidQueryError, match="positive"):
        service.recommend([], [1])
    empty = service.search_text("x", SearchOptions(filters=Filters(tempo_min=200, tempo_max=100)))
    assert empty.hits == [] and empty.weak_match  # a range nothing passes, not an error


def test_removed_tracks_never_return() -> None:
    x = _vectors(300)
    ids = np.arange(1, 301)
    rng = np.random.default_rng(0)
    svc = SearchService(TinyEncoder(DIM), VectorIndex.build("t", ids, x, factory="HNSW32"),
                        TrackTable(_meta(int(i), rng) for i in ids))
    top = svc.search_vector(x[9], SearchOptions(k=5)).hits[0].track_id
    assert top == 10
    assert svc.remove_track(10)
    assert 10 not in [h.track_id for h in svc.search_vector(x[9], SearchOptions(k=50)).hits]
    assert 10 not in [h.track_id for h in svc.search_vector(
        x[9], SearchOptions(k=50, filters=Filters(collection=("ryan",)))).hits]
    svc.add_track(_meta(301, rng), x[9])
    assert svc.search_vector(x[9], SearchOptions(k=1)).hits[0].track_id == 301


def test_open_from_catalog(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    enc = TinyEncoder(DIM)
    x = enc.embed_text([f"tune number {i} reel" for i in range(20)])
    with factory() as s:
        for i, v in enumerate(x, start=1):
            s.add(Track(id=i, content_hash=f"h{i}", title=f"t{i}", duration_s=3.0,
                        sample_rate=16000, audio_format="wav", source_path="x", audio_path="x",
                        collection="ryan" if i % 2 else "bach", tags=["reel"]))
            s.add(Embedding(track_id=i, encoder_id=enc.id, dim=DIM, vector=v.tobytes()))
        s.commit()
    svc = SearchService.open(enc, factory, tmp_path / "idx")
    res = svc.search_text("tune number 7 reel", SearchOptions(k=3))
    assert res.hits[0].track_id == 8
    res = svc.search_text("tune number 7 reel",
                          SearchOptions(k=3, filters=Filters(collection=("bach",))))
    assert [h.track_id % 2 for h in res.hits] == [0, 0, 0]


def test_every_mode_carries_the_detectors_verdict(service: SearchService) -> None:
    from retrieval.search.weak_match import WeakMatchDetector

    # A detector that calls everything below 0.999 weak: the verdict is the injected one's.
    picky = SearchService(service.encoder, service.index, service.table,
                          detector=WeakMatchDetector.fallback("tiny-test@32", 0.999))
    o = SearchOptions(k=3)
    results = [picky.search_text("a reel", o), picky.similar(42, o),
               picky.recommend([42, "an air"], [44], "best_score", o),
               picky.recommend([42], [], "average_vector", o)]
    for r in results:
        assert r.weak is not None and r.weak_match is r.weak.weak is True
        assert r.weak.threshold == 0.5 and 0.0 <= r.weak.score <= 1.0
        # k=3, but the signals read the ten best candidates
        # a text query also says how much of the catalog has what it names
        assert set(r.weak.signals) - {"named", "named_none"} == {"top1", "top10", "gap"}
        assert r.weak.signals["top1"] == pytest.approx(r.best_score, abs=1e-6)
        assert r.weak.signals["gap"] > 0  # ten distinct cosines, not three
    # this catalog tags reels but has no tune_type "reel": nothing has what the query names
    assert results[0].weak.signals["named"] == 0.0 and "named" not in results[1].weak.signals
    assert results[0].weak.signals["named_none"] == 1.0 and "named_none" not in results[1].weak.signals
    q = service.vectors[41]
    full = np.sort(service.vectors @ q)[::-1]
    sim = service.similar(42, o)  # excludes 42 itself
    assert sim.weak.signals["top10"] == pytest.approx(float(full[1:11].mean()), abs=2e-3)
    # page 2 of a query is as weak as page 1
    p2 = service.search_text("a reel", SearchOptions(k=3, offset=3))
    assert p2.weak == service.search_text("a reel", o).weak
    empty = service.search_text("x", SearchOptions(filters=Filters(tempo_min=200, tempo_max=100)))
    assert empty.weak.reason == "no track passed the filters" and empty.weak.weak
