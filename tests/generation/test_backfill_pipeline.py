"""The backfill pipeline end to end: committed encoder, prior and generator on a tiny real catalog.

Everything is real and offline: clap-mini (committed), its committed prior, the committed
symbolic weights (one search round and 5-second candidates to stay fast), a SQLite catalog of
tones ingested by the catalog's own ingestion and embedded by clap-mini, the worker loop and the
store, and a melodic n-gram index built from two real corpus tunes.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from generation.backfill.catalog import DatabaseCatalog
from generation.backfill.novelty import NgramIndex, build_ngram_index
from generation.backfill.pipeline import BackfillConfig, BackfillPipeline, JobRequest, Outcome, job_seed
from generation.backfill.worker import Keeper, Report, run_worker
from generation.errors import GenerationError
from generation.generators import GenerationRequest, load_generator
from generation.generators.base import Candidate
from generation.generators.symbolic_render import Performance, play, score_json
from generation.symbolic.corpus import Source, corpus_root, list_sources
from generation.symbolic.render import Events, load_score, score_to_events
from index.db import open_catalog
from index.ingest import ingest
from index.models import Embedding, Track, TrackProvenance
from index.repo import backfill as q
from index.store import AudioStore
from tests.api.conftest import tone

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def models() -> tuple[object, object, object]:
    """(clap-mini, its prior, the symbolic generator with one search round): loaded once."""
    from retrieval.encoders import load_encoder
    from retrieval.prior import prior_weights_path
    from retrieval.prior.pipeline import PriorPipeline

    enc = load_encoder("default", device="cpu")
    prior = PriorPipeline.from_pretrained(prior_weights_path(enc.id))
    return enc, prior, load_generator("symbolic", encoder=enc, search_rounds=1)


@pytest.fixture(scope="module")
def tunes() -> list[Source]:
    irish = [s for s in list_sources() if s.family == "irish"]
    return irish[:2]


@pytest.fixture(scope="module")
def ngram(tunes: list[Source]) -> NgramIndex:
    return build_ngram_index(tunes)


def _ingest(factory: sessionmaker[Session], store: AudioStore, enc: object, root: Path,
            clips: list[tuple[str, np.ndarray, int, str]]) -> list[int]:
    """Ingest ``(name, audio, sample rate, piece id)`` clips, embedded by ``enc``; their track ids."""
    from index.audio import decode

    root.mkdir(parents=True)
    rows = []
    for name, audio, sr, piece in clips:
        sf.write(root / name, audio, sr)
        rows.append({"path": name, "title": name, "piece_id": piece, "meter": "4/4", "mode": "major"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def embed(session: Session, tracks: list[Track]) -> None:
        waves = [decode(store.path_for(t.audio_path), enc.sample_rate) for t in tracks]
        for t, v in zip(tracks, enc.embed_audio(waves), strict=True):
            session.add(Embedding(track_id=t.id, encoder_id=enc.id, dim=enc.dim, vector=v.astype("<f4").tobytes()))

    summary = ingest([root], factory, store, metadata=root / "metadata.jsonl", on_batch=embed, progress=False)
    assert summary.ingested == len(clips), summary
    with factory() as s:
        return list(s.scalars(select(Track.id).where(Track.piece_id.in_([c[3] for c in clips])).order_by(Track.id)))


@pytest.fixture
def catalog(tmp_path: Path, models: tuple) -> Iterator[tuple[sessionmaker[Session], AudioStore, list[int]]]:
    """A SQLite catalog of four tones (four works), embedded by clap-mini."""
    factory = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = AudioStore(tmp_path / "store")
    clips = [(f"tone{i}.wav", tone(110 * 2 ** (i / 3), 3.0, 16_000, harmonics=2 + i), 16_000, f"work/{i}")
             for i in range(4)]
    ids = _ingest(factory, store, models[0], tmp_path / "src", clips)
    yield factory, store, ids
    factory.kw["bind"].dispose()


def _pipeline(models: tuple, ngram: NgramIndex | Path | None, factory: sessionmaker[Session] | None,
              generator: object | None = None) -> BackfillPipeline:
    enc, prior, gen = models
    cat = DatabaseCatalog(factory, enc.id, enc.dim) if factory is not None else None
    return BackfillPipeline(enc, prior, generator or gen, ngram=ngram, catalog=cat)


def _job(factory: sessionmaker[Session], query: str, **request: object):
    job, _ = q.enqueue(factory, q.request_key(query, request), query, dict(request), recent_window_s=0)
    return job


def _work(factory, store, generate, **kw):
    return run_worker(factory, store, generate, worker_id="w", lease_s=60, heartbeat_s=5,
                      stop_event=threading.Event(), encoder_id="clap-mini", exit_when_idle=True, **kw)


def test_a_job_stores_its_keepers_with_full_provenance(models: tuple, ngram: NgramIndex, catalog: tuple) -> None:
    factory, store, catalog_ids = catalog
    enc = models[0]
    job = _job(factory, "a dance tune for accordion", n=2, duration_s=5.0, attributes={"mode": "minor"},
               filters={"meter": ["3/4"]})
    pipe = _pipeline(models, ngram, factory).as_pipeline()
    stats = run_worker(factory, store, pipe.generate, worker_id="w", lease_s=60, heartbeat_s=5,
                       stop_event=threading.Event(), encoder_id=pipe.encoder_id, exit_when_idle=True)
    assert (stats.done, stats.stored) == (1, 2)
    p = q.job_progress(factory, job.id)
    assert p.status == "done" and len(p.result_track_ids) == 2
    prog = p.progress
    assert prog["stage"] == "done" and prog["n_candidates"] == 2 and prog["generated"] == 4
    assert prog["kept"] == 2 and prog["stored"] == 2 and prog["rejected"] == len(prog["rejections"])
    with factory() as s:
        for tid in p.result_track_ids:
            t = s.get(Track, tid)
            assert t.origin == "generated" and t.meter == "3/4" and t.mode == "minor"  # filter + attribute
            assert t.ensemble and t.instruments and t.key and t.tempo_bpm > 0 and "generated" in t.tags
            assert "(generated #" in t.title and abs(t.duration_s - 5.0) < 0.1
            score = t.extra["score"]
            assert score["format"] == "tunescope-events/1" and score["meter"] == "3/4" and score["programs"]
            prov = s.scalars(select(TrackProvenance).where(TrackProvenance.track_id == tid)).one()
            assert (prov.job_id, prov.generator_id, prov.prior_count, prov.prior_dim) == (job.id, "symbolic", 8, 512)
            assert prov.seed == (job_seed(job.id) + prov.candidate_index) % 2**32
            assert prov.weights_id.startswith("symbolic@") and "accordion" in prov.prompt
            assert prov.scores["encoder_id"] == enc.id and -1 <= prov.scores["total"] <= 1
            assert prov.gates["melody"]["passed"] and prov.gates["melody"]["copied_run"] < 12
            gate = prov.gates["embedding"]
            assert gate["passed"] and gate["max_similarity"] <= gate["threshold"] and gate["catalog_tracks"] == 4
            assert set(prov.neighbour_track_ids) <= set(catalog_ids) and len(prov.neighbour_track_ids) == 4
            vec = np.frombuffer(s.scalars(select(Embedding.vector).where(Embedding.track_id == tid)).one(), "<f4")
            assert abs(float(np.linalg.norm(vec)) - 1) < 1e-4


def test_a_retry_regenerates_the_same_candidates_and_stores_none_twice(models: tuple, ngram: NgramIndex,
                                                                        catalog: tuple) -> None:
    factory, store, _ = catalog
    job = _job(factory, "a lively jig for fiddle", n=2, duration_s=5.0)
    pipeline = _pipeline(models, ngram, factory)
    attempts: list[list[int]] = []

    def crash_after_first(j):  # attempt 1 dies after its first keeper is stored
        attempts.append([])
        for item in pipeline.generate(j):
            if isinstance(item, Keeper):
                attempts[-1].append(item.provenance.candidate_index)
                if len(attempts) == 1 and len(attempts[-1]) == 2:
                    raise RuntimeError("worker crashed")
            yield item

    stats = _work(factory, store, crash_after_first)
    assert stats.outcomes == [(job.id, "queued"), (job.id, "done")] and stats.stored == 2
    assert attempts[0] == attempts[1]  # same indexes, same order: the idempotency key holds
    p = q.job_progress(factory, job.id)
    with factory() as s:
        rows = s.scalars(select(TrackProvenance).where(TrackProvenance.job_id == job.id)).all()
    assert sorted(r.candidate_index for r in rows) == sorted(attempts[1])
    assert sorted(p.result_track_ids) == sorted(r.track_id for r in rows)


def test_the_gate_rejects_a_near_copy_of_a_track_added_after_the_first_run(
        models: tuple, ngram: NgramIndex, catalog: tuple, tmp_path: Path) -> None:
    factory, store, _ = catalog
    job = _job(factory, "a slow air for flute", n=1, duration_s=5.0)
    pipeline = _pipeline(models, ngram, factory)
    first = [k for k in pipeline.generate(job) if isinstance(k, Keeper)]
    assert len(first) == 1
    audio, sr = sf.read(io.BytesIO(first[0].audio), dtype="float32")
    near = 0.8 * audio + np.random.default_rng(0).normal(0, 0.003, len(audio)).astype(np.float32)
    (copy_id,) = _ingest(factory, store, models[0], tmp_path / "copy", [("copy.wav", near, sr, "work/copy")])

    # The same job again (a retry that stored nothing): the catalog is read anew, the copy is in it.
    items = list(pipeline.run(job.query, JobRequest(1, 5.0), job_seed(job.id), job_id=job.id))
    outcomes = [i for i in items if isinstance(i, Outcome)]
    assert outcomes[0].candidate_index == first[0].provenance.candidate_index  # same candidate, same index
    copied = outcomes[0]
    assert copied.rejected_by == ("embedding",) and f"track {copy_id}" in copied.rejected
    assert copied.gates["embedding"]["max_similarity"] > 0.97 > copied.gates["embedding"]["threshold"]
    assert copied.neighbour_track_ids[0] == copy_id
    last = [i.progress for i in items if isinstance(i, Report)][-1]
    assert last["rejected_by"]["embedding"] >= 1 and last["rejections"][0]["reason"].startswith(
        f"sounds like track {copy_id}")


class Copyist:
    """The real generator, except that its first candidate plays a corpus tune note for note."""

    def __init__(self, real: object, tune: Events, meter: str) -> None:
        self.real, self.tune, self.meter = real, tune, meter
        self.id, self.weights_id, self.sample_rate = real.id, real.weights_id, real.sample_rate

    def generate(self, request: GenerationRequest) -> list[Candidate]:
        cands = self.real.generate(request)
        audio, qbpm, arranged, tr = play(self.tune, self.meter, False, Performance("solo fiddle", 110.0, 2),
                                         request.duration_s, self.sample_rate)
        copy = replace(cands[0], audio=audio, score=score_json(arranged, [], self.meter, qbpm, tr))
        self.copied_seed = copy.seed
        return [copy, *cands[1:]]


def test_the_melody_gate_rejects_a_corpus_tune(models: tuple, ngram: NgramIndex, tunes: list[Source]) -> None:
    tune = score_to_events(load_score(corpus_root() / tunes[0].path, tunes[0].abc))
    gen = Copyist(models[2], tune, tunes[0].facts.get("meter") or "6/8")
    enc, prior, _ = models
    pipeline = BackfillPipeline(enc, prior, gen, ngram=ngram, catalog=None, config=BackfillConfig(oversample=1))
    seed = 7
    outcomes = [i for i in pipeline.run("a jig", JobRequest(2, 5.0), seed) if isinstance(i, Outcome)]
    assert len(outcomes) == 2  # oversample 1: both candidates are gated
    copy = next(o for o in outcomes if o.candidate_index == gen.copied_seed - seed)
    assert copy.rejected_by == ("melody",) and "copies a corpus melody" in copy.rejected
    assert copy.gates["melody"]["copied_run"] >= 12 and copy.gates["embedding"] == {"skipped": "no catalog"}
    other = next(o for o in outcomes if o is not copy)
    assert other.kept and other.gates["melody"]["passed"] and other.gates["melody"]["copied_run"] < 12


def test_without_the_novelty_index_the_job_fails_saying_how_to_build_it(models: tuple, catalog: tuple,
                                                                        tmp_path: Path) -> None:
    factory, store, _ = catalog
    job, _ = q.enqueue(factory, "reel", "a reel", {"n": 1}, recent_window_s=0, max_attempts=1)
    pipe = _pipeline(models, tmp_path / "novelty" / "melody-12grams.npy", factory).as_pipeline()
    _work(factory, store, pipe.generate)
    p = q.job_progress(factory, job.id)
    assert p.status == "failed" and "tunescope build-novelty-index" in p.error and "does not exist" in p.error


def test_job_requests_are_checked_and_filters_become_attributes() -> None:
    c = BackfillConfig()
    r = JobRequest.parse({"n": 3, "attributes": {"meter": "6/8"}, "like_track_id": 5,
                          "filters": {"meter": ["3/4"], "mode": "minor", "tune_type": ["jig", "reel"],
                                      "instruments": ["fiddle"]}}, c)
    assert r == JobRequest(3, 20.0, {"meter": "6/8", "mode": "minor", "instrument": "fiddle"}, 5)
    assert JobRequest.parse(None, c) == JobRequest(4, 20.0, {}, None)
    for bad in ({"n": 0}, {"n": "2"}, {"duration_s": "long"}, {"attributes": {"meter": 3}}, {"like_track_id": "7"}):
        with pytest.raises(GenerationError):
            JobRequest.parse(bad, c)
    assert job_seed(41) == job_seed(41) != job_seed(42) and 0 <= job_seed(41) < 2**32


def test_a_like_track_steers_the_prior_and_an_unknown_one_fails_the_job(models: tuple, ngram: NgramIndex,
                                                                        catalog: tuple) -> None:
    factory, _, ids = catalog
    enc = models[0]
    pipeline = _pipeline(models, ngram, factory)
    text = enc.embed_text(["a reel"])[0]
    plain = pipeline._prior_samples(text, JobRequest(1, 5.0), 3)
    like = pipeline._prior_samples(text, JobRequest(1, 5.0, like_track_id=ids[0]), 3)
    liked = pipeline.catalog.track_vector(ids[0])
    assert plain.shape == like.shape == (8, enc.dim)
    assert float((like @ liked).mean()) > float((plain @ liked).mean())  # pulled toward the liked track
    run = pipeline.run("a reel", JobRequest(1, 5.0, like_track_id=10_000), 3)
    with pytest.raises(GenerationError, match="track 10000 has no clap-mini"):
        list(run)


def test_a_staged_search_stores_its_first_keeper_before_the_search_ends(models: tuple, ngram: NgramIndex,
                                                                        catalog: tuple) -> None:
    """The first keeper comes from the early list (round 1 of 2); the rest from the end; none twice."""
    from generation.generators.symbolic import SymbolicGenerator

    class Counting(SymbolicGenerator):  # the real generator, counting the rounds it has made
        rounds_made = 0

        def _make(self, *args, **kw):  # type: ignore[no-untyped-def]
            Counting.rounds_made += 1
            return super()._make(*args, **kw)

    factory, _, _ = catalog
    gen = Counting(encoder=models[0], search_rounds=2, early_round=1, pool=4)
    pipe = _pipeline(models, ngram, factory, generator=gen)
    items = pipe.run("a slow air for flute", JobRequest(3, 5.0), seed=5)
    first = next(o for o in items if isinstance(o, Outcome) and o.kept)
    assert Counting.rounds_made == 1  # stored (yielded) while the search's second round is still to come
    assert first.candidate.conditioning["search"]["rounds"] == 1
    assert first.candidate.conditioning["search"]["of_rounds"] == 2
    rest = [o for o in items if isinstance(o, Outcome)]
    assert Counting.rounds_made == 2
    kept = [first] + [o for o in rest if o.kept]
    assert len(kept) == 3
    assert {o.candidate.conditioning["search"]["rounds"] for o in kept[1:]} == {2}
    indexes = [first.candidate_index] + [o.candidate_index for o in rest]
    assert len(indexes) == len(set(indexes))  # no candidate gated twice
    again = [o.candidate_index for o in pipe.run("a slow air for flute", JobRequest(3, 5.0), seed=5)
             if isinstance(o, Outcome) and o.kept]
    assert again == [o.candidate_index for o in kept]  # a retry stores the same candidates


def test_the_candidate_closest_to_the_query_leads_and_the_rest_follow_the_combined_score(
        models: tuple, ngram: NgramIndex) -> None:
    enc, prior, _ = models
    gen = load_generator("symbolic", encoder=enc, search_rounds=1, pool=6)
    req = JobRequest(3, 5.0)

    def outcomes(leads: bool) -> list[Outcome]:
        pipe = BackfillPipeline(enc, prior, gen, ngram=ngram, catalog=None,
                                config=BackfillConfig(oversample=2, query_leads=leads))
        return [o for o in pipe.run("a slow air for the harp", req, seed=9) if isinstance(o, Outcome)]

    led, plain = outcomes(True), outcomes(False)
    assert [o.rank for o in plain] == list(range(len(plain)))  # control: combined-score order only
    best_query = max(plain, key=lambda o: o.scores["query"])
    assert led[0].candidate_index == best_query.candidate_index and led[0].scores["lead"] == "query"
    assert led[0].kept  # no catalog and a fresh melody: the lead passes the gate
    rest = [o.rank for o in led[1:]]
    assert rest == sorted(rest) and 0 in rest + [led[0].rank]  # then the combined score, best first
    assert len({o.candidate_index for o in led}) == len(led) == 3
