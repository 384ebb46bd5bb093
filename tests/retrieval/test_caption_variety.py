"""Varied training captions: determinism, variety, dropout, mood grounding, and no evaluation leak."""

from __future__ import annotations

import random
import re

import pytest

from retrieval import captions as cap
from retrieval.caption_variety import (
    MOOD_HYPOTHESIS,
    MOOD_MODE,
    MOOD_TABLE,
    MOOD_TEMPO,
    fact_phrases,
    fact_vocabulary,
    mood_words,
    varied_captions,
)
from retrieval.evaluation.real_descriptions import REAL_DESCRIPTIONS

JIG = {"ensemble": "solo fiddle", "family": "strings", "instruments": ["fiddle"], "tune_type": "jig",
       "tempo_bpm": 128.3, "tempo_bucket": "fast", "mode": "dorian", "key": "E", "meter": "6/8",
       "meter_class": "compound", "region": "Irish", "composer": None,
       "collection": "O'Neill's Music of Ireland", "period": None}
CHORALE = {"ensemble": "choir", "family": "voice", "instruments": ["choir"], "tune_type": "chorale",
           "tempo_bpm": 62.0, "tempo_bucket": "slow", "mode": "minor", "key": "B", "meter": "4/4",
           "meter_class": "duple", "region": "Baroque", "composer": "Johann Sebastian Bach",
           "collection": "Bach chorales", "period": "Baroque"}

_ENSEMBLES = [("solo fiddle", "strings", ["fiddle"]), ("choir", "voice", ["choir"]),
              ("string quartet", "strings", ["violin", "violin", "viola", "cello"]),
              ("accordion", "free reed", ["accordion"]), ("bagpipes", "bagpipes", ["bagpipes"]),
              ("solo piano", "keyboard", ["piano"]), ("fiddle and flute", "mixed", ["fiddle", "flute"]),
              ("harp", "plucked", ["harp"]), ("church organ", "organ", ["organ"]),
              ("trumpet", "brass", ["trumpet"]), ("tin whistle", "woodwind", ["tin whistle"])]
_TUNES = ["jig", "reel", "hornpipe", "slip jig", "air", "strathspey", "folk song", "chorale",
          "quartet movement", "mass movement", "madrigal", "motet", "trecento song", "march", "waltz", None]
_COMPOSERS = [None, None, "Johann Sebastian Bach", "Joseph Haydn", "Claudio Monteverdi", "Ludwig van Beethoven"]
_COLLECTIONS = [None, "O'Neill's Music of Ireland", "Essen Folksong Collection", "Bach chorales", "Aird's Airs"]
_REGIONS = [None, "Irish", "Scottish", "Celtic", "German folk", "Baroque", "Renaissance", "medieval"]


def random_facts(rng: random.Random) -> dict:
    ens, fam, insts = rng.choice(_ENSEMBLES)
    meter = rng.choice([None, "2/4", "3/4", "4/4", "6/8", "9/8", "2/2"])
    bpm = rng.choice([None, round(rng.uniform(40, 240), 1)])
    return {"ensemble": ens, "family": fam, "instruments": insts, "tune_type": rng.choice(_TUNES),
            "tempo_bpm": bpm, "tempo_bucket": cap.tempo_bucket(bpm) if bpm else None,
            "mode": rng.choice([None, "major", "minor", "dorian", "mixolydian"]),
            "key": rng.choice([None, "D", "G", "A", "Eb"]), "meter": meter,
            "meter_class": cap.meter_class(meter), "region": rng.choice(_REGIONS),
            "composer": rng.choice(_COMPOSERS), "collection": rng.choice(_COLLECTIONS), "period": None}


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9/']+", text.lower()))


def _mentions(caption: str, facts: dict) -> set[str]:
    low = caption.lower()
    return {k for k, words in fact_vocabulary(facts).items() if any(w.lower() in low for w in words)}


@pytest.fixture(scope="module")
def many_captions() -> list[tuple[dict, str]]:
    rng = random.Random(7)
    out = []
    while len(out) < 2000:
        f = random_facts(rng)
        out += [(f, c) for c in varied_captions(f, 4, rng.randrange(10**6))]
    return out[:2000]


def test_deterministic_per_seed_and_seeds_differ():
    assert varied_captions(JIG, 8, 5) == varied_captions(JIG, 8, 5)
    assert varied_captions(JIG, 8, "p/1:0") == varied_captions(JIG, 8, "p/1:0")
    assert varied_captions(JIG, 8, 5) != varied_captions(JIG, 8, 6)
    assert fact_phrases(JIG, random.Random(1)) == fact_phrases(JIG, random.Random(1))


@pytest.mark.parametrize("facts", [JIG, CHORALE])
def test_n_distinct_captions_where_facts_allow(facts):
    out = varied_captions(facts, 40, 0)
    assert len(out) == 40 == len(set(out))
    assert len({c.split()[0].lower() for c in out}) >= 10  # not one template with slots


def test_few_facts_give_fewer_captions_and_empty_facts_none():
    assert 1 <= len(varied_captions({"tune_type": "gavotte"}, 50, 0)) < 50
    assert varied_captions({}, 5, 0) == []


def test_every_caption_mentions_a_fact(many_captions):
    missing = [c for f, c in many_captions if not _mentions(c, f)]
    assert not missing, missing[:5]


@pytest.mark.parametrize("dropout", [0.9, 1.0])
def test_dropout_never_drops_all_facts(dropout):
    for seed in range(50):
        for c in varied_captions(JIG, 4, seed, dropout=dropout):
            assert _mentions(c, JIG), c
    assert varied_captions({"composer": "Joseph Haydn"}, 3, 0, dropout=1.0)


def test_dropout_zero_keeps_many_facts_and_high_dropout_few():
    full = [len(_mentions(c, CHORALE)) for c in varied_captions(CHORALE, 20, 1, dropout=0.0)]
    sparse = [len(_mentions(c, CHORALE)) for c in varied_captions(CHORALE, 20, 1, dropout=0.8)]
    assert sum(full) / len(full) > 6 and sum(sparse) / len(sparse) < 3


def test_fact_phrases_cover_known_facts_only():
    p = fact_phrases({"tune_type": "reel", "meter": "4/4", "composer": None}, random.Random(0))
    assert set(p) == {"tune", "meter"}
    names = {fact_phrases(CHORALE, random.Random(s))["composer"] for s in range(60)}
    assert {"Bach", "J. S. Bach", "Johann Sebastian Bach"} <= names
    meters = {fact_phrases(JIG, random.Random(s))["meter"] for s in range(200)}
    assert {"in 6/8", "in six-eight", "compound duple", "lilting"} <= meters
    assert fact_phrases({"composer": "Joseph Haydn"}, random.Random(0)).keys() == {"composer", "tradition"}


def test_no_paraphrase_template_or_synonym_leaks(many_captions):
    grams = set()
    rng = random.Random(3)
    for _ in range(300):
        for p in cap.paraphrase_captions(random_facts(rng), 6, rng.randrange(10**6)):
            w = _norm(p).split()
            grams |= {" ".join(w[i:i + 5]) for i in range(len(w) - 4)}
    words = {w for ws in [*cap._P_TEMPO.values(), *cap._P_MODE.values()] for w in ws}
    phrases = {p for p in cap._P_ENS.values() if " " in p and p not in cap._FAMILY_WORDS.values()}
    for f in (JIG, CHORALE):
        many_captions = [*many_captions, *((f, c) for c in varied_captions(f, 40, 9, dropout=0.0))]
    for _, c in many_captions:
        w = _norm(c).split()
        assert not ({" ".join(w[i:i + 5]) for i in range(len(w) - 4)} & grams), c
        padded = f" {_norm(c)} "
        assert not [x for x in words | phrases if f" {_norm(x)} " in padded], c


def test_no_real_description_among_varied_captions(many_captions):
    texts = {_norm(c) for _, c in many_captions}
    assert not [d.text for d in REAL_DESCRIPTIONS if _norm(d.text) in texts]


def test_mood_words_follow_the_hypothesis_direction():
    assert "H1" in MOOD_HYPOTHESIS and "How to test" in MOOD_HYPOTHESIS
    for (tempo, mode), words in MOOD_TABLE.items():
        facts = {"tempo_bucket": tempo, "mode": mode}
        opposite = MOOD_TABLE[({"fast": "slow", "slow": "fast"}.get(tempo, tempo),
                               {"major": "minor", "minor": "major"}[mode])]
        for s in range(30):
            got = mood_words(facts, random.Random(s))
            assert got and set(got) <= set(words) and not set(got) & set(opposite), (tempo, mode, got)
    assert set(mood_words({"tempo_bucket": "slow"}, random.Random(0))) <= set(MOOD_TEMPO["slow"])
    assert set(mood_words({"mode": "dorian"}, random.Random(0))) <= set(MOOD_MODE["minor"])
    assert mood_words({"tune_type": "jig"}, random.Random(0)) == []


def test_captions_carry_only_moods_of_their_cell():
    happy = set(MOOD_TABLE[("fast", "major")]) | set(MOOD_TABLE[("slow", "major")])
    sad = set(MOOD_TABLE[("slow", "minor")])
    rows = [(CHORALE, happy), ({**JIG, "mode": "major", "key": "D"}, sad)]
    for facts, forbidden in rows:
        caps = varied_captions(facts, 200, 2)
        assert not [c for c in caps if set(_norm(c).split()) & forbidden]
    seen = {w for c in varied_captions(CHORALE, 200, 2) for w in _norm(c).split()} & set(MOOD_TABLE[("slow", "minor")])
    assert seen  # moods do appear, with a probability
