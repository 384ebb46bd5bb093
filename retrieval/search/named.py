"""What a query names outright (a tune type, an instrument, an ensemble, a mode), as filters.

The weak-match detector's strongest evidence: when a query says "waltz" or "bagpipes" and no
catalog track is a waltz or has bagpipes, the catalog lacks what was asked for, whatever the
cosine scores say (text–audio cosines sit on a query-dependent scale, so a hole query's best
score can exceed a covered query's). Only explicit words count, matched as whole words, the
longest phrase first ("slip jig" before "jig", "string quartet" before "quartet"); mood words
("sad") are left to the embeddings: that link is a hypothesis
(:data:`retrieval.caption_variety.MOOD_HYPOTHESIS`), not a fact to filter on.

The vocabulary is fixed here, not read from the catalog: a catalog without waltzes must still
recognise the word "waltz" in order to know it has none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

TUNE_TYPES = ("slip jig", "single jig", "double jig", "highland fling", "jig", "reel", "hornpipe",
              "waltz", "march", "polka", "strathspey", "slide", "mazurka", "clog", "air",
              "chorale", "madrigal", "motet", "mass movement", "quartet movement", "trecento song")
_TUNE_ALIASES = {"single jig": "jig", "double jig": "jig", "waltzes": "waltz", "jigs": "jig",
                 "reels": "reel", "hornpipes": "hornpipe", "marches": "march", "polkas": "polka",
                 "chorales": "chorale", "madrigals": "madrigal", "motets": "motet",
                 "airs": "air", "mass": "mass movement"}
ENSEMBLES = {"string quartet": "string quartet", "brass quartet": "brass quartet",
             "woodwind quartet": "woodwind quartet", "recorder consort": "recorder consort",
             "string orchestra": "string orchestra", "choir": "choir", "chorus": "choir"}
INSTRUMENTS = {"bagpipes": "bagpipes", "bagpipe": "bagpipes", "highland pipes": "bagpipes",
               "pipes": "bagpipes", "fiddle": "fiddle", "violin": "violin", "viola": "viola",
               "cello": "cello", "flute": "flute", "tin whistle": "tin whistle",
               "whistle": "tin whistle", "accordion": "accordion", "piano": "piano",
               "organ": "organ", "harp": "harp", "harpsichord": "harpsichord", "guitar": "guitar",
               "banjo": "banjo", "harmonica": "harmonica", "recorder": "recorder",
               "trumpet": "trumpet", "trombone": "trombone", "french horn": "french horn",
               "clarinet": "clarinet", "oboe": "oboe", "bassoon": "bassoon"}
_MODES = {"minor key": "minor", "in a minor": "minor", "minor": "minor", "major key": "major",
          "in a major": "major", "major": "major"}


def _phrases(table: Mapping[str, str]) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(rf"(?<![a-z]){re.escape(k)}(?![a-z])"), v)
            for k, v in sorted(table.items(), key=lambda kv: -len(kv[0]))]


_TABLES: tuple[tuple[str, list[tuple[re.Pattern[str], str]]], ...] = (
    ("ensemble", _phrases(ENSEMBLES)),
    ("tune_type", _phrases({**{t: t for t in TUNE_TYPES}, **_TUNE_ALIASES})),
    ("instruments", _phrases(INSTRUMENTS)),
    ("mode", _phrases(_MODES)),
)


def named_filters(text: str) -> dict[str, list[str]]:
    """``{filter field: [values]}`` for what ``text`` names; ``{}`` when it names nothing.

    Each phrase is consumed once matched, so "string quartet" does not also name "quartet"
    and "slip jig" does not also name "jig". Values within a field are alternatives (OR), as
    in the search filters; fields combine with AND.
    """
    s = " " + re.sub(r"\s+", " ", text.lower().replace("’", "'")) + " "
    out: dict[str, list[str]] = {}
    for name, table in _TABLES:
        for rx, value in table:
            if rx.search(s):
                s = rx.sub(" ", s)
                if value not in out.setdefault(name, []):
                    out[name].append(value)
    return {k: v for k, v in out.items() if v}


def named_support(text: str, count: Callable[[dict[str, list[str]]], int], catalog_size: int) -> float:
    """How much of the catalog has what ``text`` names: ``log1p(matches) / log1p(size)``.

    0 when nothing matches, 1 when everything does. A query that names nothing is 1: the
    empty filter passes every track, so nothing it asked for is missing (the signal then
    carries no evidence either way). ``count`` answers "how many tracks pass these filters"
    (the search service's column store, or the evaluation's holed rows).
    """
    named = named_filters(text)
    if not named or catalog_size <= 0:
        return 1.0
    return math.log1p(max(0, count(named))) / math.log1p(catalog_size)
