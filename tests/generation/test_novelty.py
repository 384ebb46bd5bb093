"""The novelty gate: the melodic n-gram index over a small slice of the real corpus, and the
embedding gate with its different-works threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generation.backfill.novelty import (
    NgramIndex,
    build_ngram_index,
    different_work_threshold,
    embedding_gate,
    line_tokens,
    melodic_lines,
    window_hashes,
)
from generation.errors import GenerationError
from generation.symbolic.corpus import Source, corpus_root, list_sources
from generation.symbolic.render import Events, load_score, score_to_events


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    """Two pieces from each of three families, one of them a four-part chorale."""
    by_family: dict[str, list[Source]] = {}
    for s in list_sources():
        by_family.setdefault(s.family, []).append(s)
    return by_family["irish"][:2] + by_family["essen"][:2] + by_family["chorale"][:1]


@pytest.fixture(scope="module")
def index(sources: list[Source]) -> NgramIndex:
    return build_ngram_index(sources)


def _events(source: Source) -> Events:
    return score_to_events(load_score(corpus_root() / source.path, source.abc))


def _line(pitch, onset) -> Events:
    n = len(pitch)
    return Events(onset=np.asarray(onset, float), dur=np.ones(n), pitch=np.asarray(pitch, np.int16),
                  voice=np.zeros(n, np.int16), strength=np.zeros(n, np.float32),
                  length_ql=float(onset[-1]) + 1, n_voices=1, bar_ql=4.0, beat_ql=1.0)


def test_hashes_ignore_transposition_but_not_rhythm(rng: np.random.Generator) -> None:
    pitch = rng.integers(55, 80, 30)
    onset = np.cumsum(rng.choice([0.5, 1.0, 1.5], 30))
    h = window_hashes(line_tokens(pitch, onset))
    assert len(h) == 30 - 1 - 12 + 1 and len(set(h.tolist())) == len(h)
    np.testing.assert_array_equal(h, window_hashes(line_tokens(pitch + 5, onset + 8.0)))
    slower = window_hashes(line_tokens(pitch, onset * 2))
    assert not set(h.tolist()) & set(slower.tolist())


def test_a_chord_is_followed_by_its_top_note() -> None:
    ev = Events(onset=np.array([0.0, 0.0, 1.0]), dur=np.ones(3), pitch=np.array([60, 67, 65], np.int16),
                voice=np.zeros(3, np.int16), strength=np.zeros(3, np.float32), length_ql=2.0,
                n_voices=1, bar_ql=4.0, beat_ql=1.0)
    ((pitch, onset),) = melodic_lines(ev)
    assert pitch.tolist() == [67, 65] and onset.tolist() == [0.0, 1.0]


def test_the_corpus_is_found_and_new_melodies_are_not(index: NgramIndex, sources: list[Source],
                                                      rng: np.random.Generator) -> None:
    assert index.meta["pieces"] == len(sources) and index.meta["failed"] == 0
    assert len(index.hashes) > 100 and np.all(index.hashes[1:] > index.hashes[:-1])
    tune = _events(sources[0])
    ((pitch, onset),) = melodic_lines(tune)
    assert index.copies_corpus(tune)
    assert index.longest_copied_run(tune) == len(pitch) - 1  # the whole tune
    assert index.copies_corpus(_line(pitch + 3, onset))  # transposed: still a copy
    chorale = _events(sources[-1])
    bass = [line for line in melodic_lines(chorale)][-1]
    assert index.copies_corpus(bass)  # every voice of a polyphonic work is indexed
    new = _line(rng.integers(50, 90, 60), np.cumsum(rng.choice([0.25, 0.5, 0.75, 1.0], 60)))
    assert not index.copies_corpus(new) and index.longest_copied_run(new) == 0


def test_a_borrowed_run_is_measured_exactly(index: NgramIndex, sources: list[Source],
                                            rng: np.random.Generator) -> None:
    ((pitch, onset),) = melodic_lines(_events(sources[2]))

    def splice(k: int) -> Events:  # k + 1 corpus notes (k pairs) between random notes
        head_p, tail_p = rng.integers(30, 45, 10), rng.integers(95, 110, 10)
        p = np.concatenate([head_p, pitch[5:5 + k + 1] + 2, tail_p])
        step = rng.choice([0.33, 0.66], 20)
        body = onset[5:5 + k + 1] - onset[5]
        o = np.concatenate([np.cumsum(step[:10]) - 20, body + 1, body[-1] + 1 + np.cumsum(step[10:])])
        return _line(p, o)

    assert index.longest_copied_run(splice(12)) == 12 and index.copies_corpus(splice(12))
    assert index.longest_copied_run(splice(15)) == 15 and not index.copies_corpus(splice(15), n=16)
    assert index.longest_copied_run(splice(11)) == 0 and not index.copies_corpus(splice(11))
    with pytest.raises(GenerationError, match="runs of 12"):
        index.copies_corpus(splice(11), n=11)


def test_save_and_load(index: NgramIndex, tmp_path: Path, sources: list[Source]) -> None:
    path = index.save(tmp_path / "nov" / "melody-12grams.npy")
    back = NgramIndex.load(path)
    np.testing.assert_array_equal(back.hashes, index.hashes)
    assert back.n == 12 and back.meta["count"] == len(index.hashes)
    assert back.copies_corpus(_events(sources[1]))
    path.write_bytes(b"garbage")
    with pytest.raises(GenerationError, match="build-novelty-index"):
        NgramIndex.load(path)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_the_embedding_gate(rng: np.random.Generator) -> None:
    catalog = _unit(rng.standard_normal((50, 16)))
    near = _unit(catalog[7] + 0.05 * rng.standard_normal(16))
    g = embedding_gate(near, catalog, 0.5, k=3)
    assert not g.passed and g.nearest[0] == 7 and g.max_similarity > 0.9 and len(g.nearest) == 3
    assert np.all(np.diff(g.similarities) <= 0)
    far = embedding_gate(_unit(rng.standard_normal(16)), catalog, 0.9)
    assert far.passed and far.max_similarity < 0.9
    assert embedding_gate(near, np.zeros((0, 16)), 0.5).passed


def test_the_threshold_counts_only_pairs_of_different_works(rng: np.random.Generator) -> None:
    works = _unit(rng.standard_normal((40, 16)))
    # Three renders per work, nearly identical: they must not raise the bar.
    x = _unit(np.repeat(works, 3, axis=0) + 0.01 * rng.standard_normal((120, 16)))
    ids = [f"work/{i // 3}" for i in range(120)]
    exact = different_work_threshold(x, ids)
    i, j = np.triu_indices(120, 1)
    keep = np.array([ids[a] != ids[b] for a, b in zip(i, j, strict=True)])
    sims = (x[i[keep]] * x[j[keep]]).sum(1)
    assert exact == pytest.approx(np.percentile(sims, 99), abs=1e-6)
    assert exact < 0.9  # the renders' ~1.0 similarities were left out
    sampled = different_work_threshold(x, ids, max_pairs=3000, seed=1)
    assert abs(sampled - exact) < 0.08
    with pytest.raises(GenerationError, match="two different works"):
        different_work_threshold(x[:3], ["w", "w", "w"])
    assert different_work_threshold(x[:3], [None, None, None]) <= 1.0  # each its own work


def test_the_catalog_threshold_reads_catalog_tracks_only(factory, rng: np.random.Generator) -> None:
    from generation.backfill.novelty import catalog_work_threshold
    from index.models import Track
    from index.repo.tracks import add_embedding

    x = _unit(rng.standard_normal((12, 8)))
    with factory() as s:
        for i in range(12):
            s.add(Track(id=i + 1, content_hash=f"{i:064x}", title=f"t{i}", duration_s=1.0,
                        sample_rate=8000, audio_format="wav", source_path="x", audio_path="x",
                        piece_id=f"p{i // 2}", origin="generated" if i >= 10 else "catalog"))
        s.flush()
        for i in range(12):
            add_embedding(s, i + 1, "enc@1", x[i])
        s.commit()
        got = catalog_work_threshold(s, "enc@1", 8)
    assert got == pytest.approx(different_work_threshold(x[:10], [f"p{i // 2}" for i in range(10)]))
