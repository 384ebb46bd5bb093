"""The offline parser, on phrasings of its own (the evaluation's simulator uses another pool)."""

from __future__ import annotations

import pytest

from retrieval.conversation.critique import Critique
from retrieval.conversation.parser import OfflineParser, Vocabulary

VOCAB = Vocabulary.build(["piano", "fiddle", "flute", "violin", "cello", "harp"],
                         ["Mozart", "J.S. Bach", "Traditional"], ["oneill", "bach", "essen"],
                         ["jig", "reel", "hornpipe", "waltz", "air"],
                         ["The Silver Spear", "Drowsy Maggie", "Tune 7"])


@pytest.fixture(scope="module")
def parse() -> OfflineParser:
    return OfflineParser(VOCAB)


@pytest.mark.parametrize(("text", "attr", "sign"), [
    ("quicker", "tempo", 1), ("a little slower please", "tempo", -1), ("way too fast", "tempo", -1),
    ("calmer", "energy", -1), ("more energetic", "energy", 1), ("happier", "mood", 1),
    ("a bit sadder", "mood", -1), ("brighter", "brightness", 1), ("darker", "brightness", -1),
    ("simpler", "density", -1), ("less busy", "density", -1), ("busier", "density", 1),
    ("lower", "register", -1), ("higher", "register", 1), ("not as slow", "tempo", 1),
])
def test_relative_attributes(parse: OfflineParser, text: str, attr: str, sign: int) -> None:
    assert parse.parse(text, 10).relative == {attr: sign}


def test_inclusions_and_exclusions(parse: OfflineParser) -> None:
    c = parse.parse("no piano, with strings, in a minor key, in three", 10)
    assert ("instrument", "piano") in c.exclude
    assert ("family", "strings") in c.include
    assert ("mode", "minor") in c.include and ("meter", "triple") in c.include
    assert parse.parse("without the fiddle", 10).exclude == [("instrument", "fiddle")]
    assert parse.parse("something in 6/8", 10).include == [("meter", "compound")]
    assert parse.parse("not in a major key", 10).exclude == [("mode", "major")]


def test_references(parse: OfflineParser) -> None:
    assert parse.parse("#2", 10).more_like == [2]
    assert parse.parse("the second one", 10).more_like == [2]
    assert parse.parse("more like this one", 10).more_like == [1]
    c = parse.parse("like #3 but not like the first", 10)
    assert c.more_like == [3] and c.less_like == [1]


def test_reference_past_the_page_is_a_note(parse: OfflineParser) -> None:
    c = parse.parse("more like #40", 10)
    assert not c.more_like and "no #40" in c.notes[0]


def test_catalog_entities_fuzzy(parse: OfflineParser) -> None:
    c = parse.parse("a hornpipe by mozzart", 10)
    assert ("tune_type", "hornpipe") in c.entities and ("artist", "Mozart") in c.entities
    assert ("title", "Drowsy Maggie") in parse.parse("play drowsy magie", 10).entities
    assert ("collection", "oneill") in parse.parse("from the oneill tunes", 10).entities


def test_contradictions_are_dropped_with_a_note(parse: OfflineParser) -> None:
    c = parse.parse("faster and slower", 10)
    assert "tempo" not in c.relative and "kept neither" in c.notes[0]
    c = parse.parse("in a minor key and in a major key", 10)
    assert not c.include and c.notes


def test_free_text_is_what_is_left(parse: OfflineParser) -> None:
    c = parse.parse("faster, like a sea shanty", 10)
    assert c.relative == {"tempo": 1} and "shanty" in c.free_text


def test_round_trip_and_validation() -> None:
    c = Critique(relative={"tempo": 1}, include=[("mode", "minor")], more_like=[2])
    assert Critique.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="relative"):
        Critique.from_dict({"relative": {"loudness": 1}})
    assert c.labels() == ["faster", "minor key", "like #2"]
