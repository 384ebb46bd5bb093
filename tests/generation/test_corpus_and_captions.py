"""Corpus enumeration, ABC header parsing and caption generation."""

from __future__ import annotations

import pytest

from generation.demo.catalog import plan_catalog, split_of
from generation.symbolic.corpus import abc_headers, list_sources, parse_abc_key, split_abc
from retrieval.captions import (
    meter_class,
    mode_family,
    paraphrase_captions,
    tempo_bucket,
    training_captions,
)


@pytest.mark.parametrize("value,expected", [
    ("G", ("G", None)), ("Gm", ("G", "minor")), ("ADorian", ("A", "dorian")),
    ("Dmix", ("D", "mixolydian")), ("EMinor", ("E", "minor")), ("Bb", ("Bb", None)),
    ("F#m", ("F#", "minor")), ("", (None, None)), ("HP", (None, None)),
])
def test_parse_abc_key(value: str, expected: tuple) -> None:
    assert parse_abc_key(value) == expected


def test_split_abc_and_headers() -> None:
    book = "%comment\nX:1\nT:One\nM:6/8\nK:G\nabc|\n\nX:2\nT:Two\nR:reel\nK:Ador\ncde|\nX:3\nT:no key\n"
    tunes = split_abc(book)
    assert len(tunes) == 2  # the third has no K: line
    h = abc_headers(tunes[1])
    assert h["T"] == "Two" and h["R"] == "reel" and h["K"] == "Ador"


def test_corpus_has_every_family() -> None:
    sources = list_sources()
    fams = {s.family for s in sources}
    assert {"irish", "scottish", "essen", "chorale", "quartet", "renaissance"} <= fams
    types = {s.facts.get("tune_type") for s in sources if s.family == "irish"}
    assert {"jig", "reel", "hornpipe", "slip jig", "air"} <= types
    assert len({s.piece_id for s in sources}) == len(sources)


def test_split_is_a_function_of_the_piece() -> None:
    assert split_of("oneill/1/2") == split_of("oneill/1/2")
    splits = [split_of(f"p{i}") for i in range(2000)]
    assert 0.75 < splits.count("train") / 2000 < 0.85
    assert 0.07 < splits.count("test") / 2000 < 0.13


def test_plan_is_deterministic_and_proportional() -> None:
    a = plan_catalog(200, seed=3)
    b = plan_catalog(200, seed=3)
    c = plan_catalog(200, seed=4)
    assert [s.piece_id for s in a] == [s.piece_id for s in b]
    assert [s.piece_id for s in a] != [s.piece_id for s in c]
    first = a[:200]
    assert len({s.piece_id for s in first}) == 200
    fams = {s.family for s in first}
    assert {"irish", "scottish", "essen", "chorale", "renaissance"} <= fams
    only_test = plan_catalog(50, seed=0, splits=["test"])
    assert all(split_of(s.piece_id) == "test" for s in only_test)


def test_plan_rejects_bad_size() -> None:
    from generation.errors import GenerationError

    with pytest.raises(GenerationError, match="size"):
        plan_catalog(0, seed=0)


FACTS = {"ensemble": "solo fiddle", "family": "strings", "instruments": ["fiddle"],
         "tune_type": "jig", "tempo_bpm": 126.0, "tempo_bucket": "fast", "mode": "dorian",
         "key": "A", "meter": "6/8", "meter_class": "compound", "region": "Irish",
         "composer": None, "collection": "O'Neill's Music of Ireland", "period": None}


def test_training_captions_are_varied_and_true() -> None:
    caps = training_captions(FACTS, 4, seed=1)
    assert len(caps) == 4 and len(set(caps)) == 4
    vocabulary = ("fiddle", "jig", "fast", "quick", "lively", "energetic", "up-tempo", "minor",
                  "dorian", "melancholic", "compound", "six-eight", "irish", "strings")
    for c in caps:
        assert any(w in c.lower() for w in vocabulary), c
        assert "major" not in c.lower() and "slow" not in c.lower(), c
    assert training_captions(FACTS, 4, seed=1) == caps


def test_paraphrases_share_no_template_with_training() -> None:
    train = {c.lower() for s in range(30) for c in training_captions(FACTS, 6, seed=s)}
    para = {c.lower() for s in range(30) for c in paraphrase_captions(FACTS, 3, seed=s)}
    assert para and not (train & para)
    assert not any("jig" in p or "fiddle" in p for p in para)  # other words, same facts


def test_label_helpers() -> None:
    assert tempo_bucket(60) == "slow" and tempo_bucket(100) == "moderate" and tempo_bucket(150) == "fast"
    assert meter_class("6/8") == "compound" and meter_class("3/4") == "triple"
    assert meter_class("2/2") == "duple" and meter_class(None) is None
    assert mode_family("dorian") == "minor" and mode_family("mixolydian") == "major"
