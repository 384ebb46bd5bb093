"""The hand-written "real descriptions" evaluation set: size, vocabulary, coverage, relevance."""

from __future__ import annotations

from generation.demo.catalog import _ADJ, _PERIOD
from generation.symbolic.corpus import _RHYTHM_ALIASES
from generation.symbolic.ensembles import FAMILY_ENSEMBLES, MELODY_ENSEMBLES, POLY_ENSEMBLES
from retrieval.evaluation.real_descriptions import REAL_DESCRIPTIONS, RealDescription, relevant

_ENS = {**MELODY_ENSEMBLES, **POLY_ENSEMBLES}
VOCAB = {
    "tune_type": set(_RHYTHM_ALIASES.values()) | {"folk song", "chorale", "quartet movement",
                                                  "mass movement", "madrigal", "motet", "trecento song"},
    "meter_class": {"duple", "triple", "compound"},
    "mode_family": {"major", "minor"},
    "mode": {"major", "minor", "dorian", "mixolydian", "phrygian", "lydian", "aeolian"},
    "tempo_bucket": {"slow", "moderate", "fast"},
    "ensemble": set(_ENS),
    "instrument_family": {e.family for e in _ENS.values()},
    "instruments": {i for e in _ENS.values() for i in e.instruments},
    "tradition": set(_PERIOD.values()) | set(_ADJ.values()),
    "corpus_family": set(FAMILY_ENSEMBLES),
    "composer": {"Johann Sebastian Bach", "Joseph Haydn", "Wolfgang Amadeus Mozart",
                 "Ludwig van Beethoven", "Giovanni Pierluigi da Palestrina", "Claudio Monteverdi",
                 "Josquin des Prez"},
    "collection": {"O'Neill's Music of Ireland", "Ryan's Mammoth Collection", "Aird's Airs",
                   "English and American folk tunes", "Essen Folksong Collection"},
    "meter": {"2/4", "3/4", "4/4", "2/2", "6/8", "9/8", "12/8", "3/8", "6/4", "3/2"},
    "key": {"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"},
    "region": {"Germany", "China", "Ireland", "Scotland", "Italy"},
}


def test_at_least_120_distinct_descriptions_with_constraints():
    texts = [d.text for d in REAL_DESCRIPTIONS]
    assert len(texts) >= 120
    assert len(set(texts)) == len(texts)
    assert all(d.constraints and all(d.constraints.values()) for d in REAL_DESCRIPTIONS)


def test_constraints_use_catalog_field_names_and_values():
    for d in REAL_DESCRIPTIONS:
        for field, values in d.constraints.items():
            assert field in VOCAB, (d.text, field)
            assert set(values) <= VOCAB[field], (d.text, field, set(values) - VOCAB[field])


def test_coverage_of_the_asked_dimensions():
    def count(field, values=None):
        return sum(1 for d in REAL_DESCRIPTIONS if field in d.constraints
                   and (values is None or set(d.constraints[field]) & set(values)))

    assert count("meter_class", ["compound"]) + count("meter", ["6/8", "9/8", "12/8"]) >= 8
    assert count("meter_class", ["duple"]) + count("meter", ["2/4", "4/4", "2/2"]) >= 5
    assert count("meter_class", ["triple"]) >= 5
    assert count("mode_family", ["minor"]) >= 10 and count("mode_family", ["major"]) >= 10
    for bucket in ("slow", "moderate", "fast"):
        assert count("tempo_bucket", [bucket]) >= 4, bucket
    for tt in ("jig", "reel", "hornpipe", "chorale", "air", "quartet movement"):
        assert count("tune_type", [tt]) >= 2, tt
    for ens in ("choir", "solo piano", "string quartet", "church organ"):
        assert count("ensemble", [ens]) >= 2, ens
    assert sum(1 for d in REAL_DESCRIPTIONS if len(d.constraints) >= 2) >= 40


def test_relevant_needs_every_constraint_and_reads_lists():
    d = RealDescription("x", {"tune_type": ("jig",), "instruments": ("fiddle", "violin")})
    assert relevant(d, {"tune_type": "jig", "instruments": ["violin"]})
    assert not relevant(d, {"tune_type": "jig", "instruments": ["flute"]})
    assert not relevant(d, {"tune_type": "reel", "instruments": ["fiddle"]})
    assert not relevant(d, {"instruments": ["fiddle"]})
    assert not relevant(RealDescription("y", {"mode_family": ("minor",)}), {"mode_family": None})
