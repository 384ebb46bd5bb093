"""An evaluation set of descriptions written the way people write about music.

Why: ``eval-encoder``'s paraphrase queries come from six templates in
:func:`retrieval.captions.paraphrase_captions`; the encoder reads them poorly (R@10 0.077), and
real users write neither those nor the training templates: playlist blurbs, forum requests,
liner-note fragments, sync-licensing briefs, half-sentences with slang ("diddly-dee"), dance
names, occasions ("for a ceilidh", "for a funeral scene") and negations.

These 150 descriptions were written by hand on 2026-12-02, before any encoder or caption
generator was measured on them, and must never be used as training captions (a test checks
that :func:`retrieval.caption_variety.varied_captions` does not produce any of them). Each one
carries the catalog-metadata constraints it asks for; a track is relevant when it satisfies all
of them (:func:`relevant`). Field names and values are those of a demo-catalog row
(``metadata.jsonl``): ``tune_type``, ``meter``, ``meter_class``, ``mode``, ``mode_family``,
``tempo_bucket``, ``ensemble``, ``instrument_family``, ``instruments``, ``tradition``,
``region``, ``composer``, ``corpus_family``. Words the catalog cannot check (moods,
occasions) are in the text but not in the constraints, so relevance stays factual.

Some tune types are rare in the corpus (waltz 6 pieces, walkaround 3, slide 2, gavotte 1 of
14,145): on a small catalog a description may have no relevant track; skip those, as
``single_attribute_eval`` does, and report how many were scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Row fields that hold a list (a track is relevant when any of its values is accepted).
LIST_FIELDS = frozenset({"instruments", "tags"})


@dataclass(frozen=True)
class RealDescription:
    """One description and what it asks of a track's metadata.

    Attributes:
        text: the description, as a person would write it.
        constraints: metadata field -> accepted values; every field must match.
    """

    text: str
    constraints: dict[str, tuple[str, ...]]


def _d(text: str, **constraints: str | tuple[str, ...]) -> RealDescription:
    return RealDescription(text, {k: (v,) if isinstance(v, str) else tuple(v)
                                  for k, v in constraints.items()})


_FIDDLE = ("fiddle", "violin")
_WHISTLE = ("tin whistle",)
_FLUTES = ("flute", "tin whistle", "recorder")
_BACH = "Johann Sebastian Bach"
_SACRED = ("chorale", "mass movement", "motet")
_KEYS = ("keyboard", "organ")
_SQUEEZE = ("accordion", "harmonica")

_METER = [
    _d("something for a ceilidh, quick and in six-eight", meter_class="compound", tempo_bucket="fast"),
    _d("bouncy diddly-dee tune in 6/8 for the opening credits", meter_class="compound"),
    _d("tunes that go ONE-two-three FOUR-five-six, twelve-eight or six-eight, doesn't matter",
       meter_class="compound"),
    _d("compound time please, not a march in four", meter_class="compound"),
    _d("galloping 6/8 thing, minor, for a chase across the moors", meter_class="compound",
       mode_family="minor"),
    _d("nine-eight tunes for a slip jig workshop", meter="9/8"),
    _d("anything with that rocking triplet lilt, on a tin whistle", meter_class="compound",
       instruments=_WHISTLE),
    _d("waltz time, one-two-three, for the first dance at the wedding", meter_class="triple"),
    _d("a gentle three-four for a slow couples' dance", meter_class="triple", tempo_bucket="slow"),
    _d("needs to be in 3, the choreographer counts in threes", meter_class="triple"),
    _d("straight four-on-the-floor feel, nothing in threes", meter_class="duple"),
    _d("march tempo, two-four, something soldiers could step to", meter="2/4"),
    _d("even duple pulse for a walking montage, no swingy six-eight", meter_class="duple"),
    _d("cut-time tunes, two big beats a bar", meter="2/2"),
    _d("4/4 please, the editor wants to cut on the beat", meter="4/4"),
    _d("minor key waltz, the kind that makes you want to cry into your pint",
       meter_class="triple", mode_family="minor"),
    _d("fast twos for a stomping set, no jigs", meter_class="duple", tempo_bucket="fast"),
    _d("three beats to the bar on the fiddle, old-time feel", meter_class="triple",
       instruments=_FIDDLE),
    _d("a lilting six-eight air, slow and sweet", meter_class="compound", tempo_bucket="slow"),
    _d("duple-metre piece in a major key for a kids' show", meter_class="duple", mode_family="major"),
]

_MODE_TEMPO = [
    _d("sad old tune on the fiddle for a funeral scene", mode_family="minor", instruments=_FIDDLE),
    _d("upbeat and sunny, strictly major, for a cereal advert", mode_family="major",
       tempo_bucket="fast"),
    _d("moody minor-key stuff for a rainy Sunday playlist", mode_family="minor"),
    _d("dark and brooding but not slow, keeps moving", mode_family="minor",
       tempo_bucket=("moderate", "fast")),
    _d("slow and minor, for the bit where the dog dies", mode_family="minor", tempo_bucket="slow"),
    _d("bright major-key tune that doesn't rush", mode_family="major",
       tempo_bucket=("slow", "moderate")),
    _d("a dorian tune, that modal Irish sound", mode="dorian"),
    _d("mixolydian pipe-style melody with the flattened seventh", mode="mixolydian"),
    _d("modal, neither properly major nor minor, old-sounding",
       mode=("dorian", "mixolydian", "phrygian", "lydian", "aeolian")),
    _d("really slow, like barely moving, for a meditation app", tempo_bucket="slow"),
    _d("mid-paced, nothing frantic, background for a cooking video", tempo_bucket="moderate"),
    _d("breakneck speed, show-off tune for a session", tempo_bucket="fast"),
    _d("as fast as possible, the fiddler's party piece", tempo_bucket="fast", instruments=_FIDDLE),
    _d("chilled tempo, a stroll not a sprint", tempo_bucket=("slow", "moderate")),
    _d("happy-go-lucky tune in D major", key="D", mode_family="major"),
    _d("something in G, major, to play along with", key="G", mode_family="major"),
    _d("A minor lament", key="A", mode_family="minor", tempo_bucket="slow"),
    _d("E minor, moderate pace, for practising with a backing", key="E", mode_family="minor",
       tempo_bucket="moderate"),
    _d("cheery, quick and light-hearted for a village fete video", mode_family="major",
       tempo_bucket="fast"),
    _d("heavy-hearted and slow, strings if possible", mode_family="minor", tempo_bucket="slow",
       instrument_family="strings"),
    _d("an unhappy little melody, minor, sung", mode_family="minor", instrument_family="voice"),
    _d("triumphant major key brass, full of pomp", mode_family="major", instrument_family="brass"),
    _d("eerie minor tune on a lone flute for a ghost story", mode_family="minor",
       instruments=("flute",)),
    _d("relaxed, lazy-afternoon pace, in a major key", mode_family="major", tempo_bucket="slow"),
    _d("tense minor thing at a good clip for the heist scene", mode_family="minor",
       tempo_bucket="fast"),
]

_TUNE_TYPES = [
    _d("need a jig for the set, fiddle if you have it", tune_type="jig", instruments=_FIDDLE),
    _d("jig on the flute for a pub scene in a period drama", tune_type="jig", instruments=("flute",)),
    _d("I teach Irish dance and need double jigs for the beginners", tune_type="jig"),
    _d("a jig in a major key, the happier the better", tune_type="jig", mode_family="major"),
    _d("reel for the last dance of the night", tune_type="reel"),
    _d("reels, reels, reels — session warm-up material", tune_type="reel"),
    _d("a Scottish reel on the box", tune_type="reel", instruments=("accordion",)),
    _d("hornpipe for a sailor's dance in the school play", tune_type="hornpipe"),
    _d("a hornpipe with that dotted swing, on fiddle", tune_type="hornpipe", instruments=_FIDDLE),
    _d("slip jigs for a hop-step figure", tune_type="slip jig"),
    _d("strathspey with the snap, Highland style", tune_type="strathspey"),
    _d("a strathspey on the pipes", tune_type="strathspey", ensemble="bagpipes"),
    _d("slow air to close the concert", tune_type="air"),
    _d("airs rather than dance tunes, something to listen to", tune_type="air"),
    _d("a plaintive Scottish air on the harp", tune_type="air", instruments=("harp",)),
    _d("a march the pipe band could play", tune_type="march"),
    _d("marching tune for a parade scene, major key", tune_type="march", mode_family="major"),
    _d("clog dance tune for the Northumbrian set", tune_type="clog"),
    _d("highland fling for the dancers at the games", tune_type="highland fling"),
    _d("an old-fashioned waltz for the tea dance", tune_type="waltz"),
    _d("hornpipe in common time, not too quick, for a beginners' class", tune_type="hornpipe", meter="4/4",
       tempo_bucket=("slow", "moderate")),
    _d("slides for a Kerry set", tune_type="slide"),
    _d("a minstrel-show walkaround", tune_type="walkaround"),
    _d("gavotte, courtly and neat", tune_type="gavotte"),
    _d("folk songs from the Essen collection, sung plainly", tune_type="folk song",
       instrument_family="voice"),
    _d("a simple German folk song, the kind kids learn at school", tune_type="folk song",
       region="Germany"),
    _d("a folk song from China, solo voice", tune_type="folk song", region="China"),
    _d("dance music for a barn dance, any dance really",
       tune_type=("jig", "reel", "hornpipe", "polka", "waltz", "march", "slide", "clog", "slip jig",
                  "strathspey", "highland fling")),
    _d("anything you could set dance to, jigs or reels", tune_type=("jig", "reel", "slip jig")),
    _d("quick reels on whistle for a busking playlist", tune_type="reel", instruments=_WHISTLE),
]

_ENSEMBLES = [
    _d("four-part hymn harmony, sung", tune_type="chorale", instrument_family="voice"),
    _d("baroque keyboard piece, counterpoint", tradition="Baroque", instrument_family=_KEYS),
    _d("Bach chorale on a big church organ", tune_type="chorale", ensemble="church organ"),
    _d("chorales but played by a string quartet, not sung", tune_type="chorale",
       ensemble="string quartet"),
    _d("hymns for brass, Salvation Army band sort of sound", tune_type="chorale",
       instrument_family="brass"),
    _d("a Haydn quartet movement", composer="Joseph Haydn", tune_type="quartet movement"),
    _d("Mozart for two violins, viola and cello", composer="Wolfgang Amadeus Mozart",
       ensemble="string quartet"),
    _d("Beethoven chamber music for strings", composer="Ludwig van Beethoven",
       instrument_family="strings"),
    _d("classical-period string quartet for a drinks reception", tradition="Classical-era",
       ensemble="string quartet"),
    _d("Palestrina, unaccompanied choir, for a cathedral scene",
       composer="Giovanni Pierluigi da Palestrina", ensemble="choir"),
    _d("renaissance polyphony, voices only", tradition="Renaissance", ensemble="choir"),
    _d("a Monteverdi madrigal", composer="Claudio Monteverdi", tune_type="madrigal"),
    _d("madrigals sung a cappella", tune_type="madrigal", ensemble="choir"),
    _d("Palestrina Kyrie, or any bit of one of his masses", composer="Giovanni Pierluigi da Palestrina",
       tune_type="mass movement"),
    _d("part of a Latin mass, choral", tune_type="mass movement", ensemble="choir"),
    _d("fourteenth-century Italian song, early music festival vibe", tune_type="trecento song"),
    _d("medieval-sounding tune on recorders", tradition="medieval", ensemble="recorder consort"),
    _d("a consort of recorders playing something Renaissance", tradition="Renaissance",
       ensemble="recorder consort"),
    _d("harpsichord, anything, love that plucky jangle", instruments=("harpsichord",)),
    _d("solo piano version of a folk tune", ensemble="solo piano",
       corpus_family=("irish", "scottish", "essen", "folk")),
    _d("a choir singing Bach", composer=_BACH, ensemble="choir"),
    _d("Bach but on piano", composer=_BACH, ensemble="solo piano"),
    _d("church music played on the organ", tune_type=_SACRED, instrument_family="organ"),
    _d("sacred choral music for Evensong", tune_type=_SACRED, instrument_family="voice"),
    _d("woodwind quartet arrangement, flute oboe clarinet bassoon", ensemble="woodwind quartet"),
    _d("brass quartet, something stately", ensemble="brass quartet"),
    _d("lush string orchestra pad for a period piece", ensemble="string orchestra"),
    _d("bagpipes, full drone, for a Burns Night video", ensemble="bagpipes"),
    _d("just a lone voice singing, no accompaniment", ensemble="solo voice"),
    _d("unaccompanied cello, reflective", ensemble="solo cello"),
    _d("solo violin, classical tone rather than folk fiddle", ensemble="solo violin"),
    _d("fiddle and box together like a proper session", ensemble="fiddle and accordion"),
    _d("flute and fiddle duet", ensemble="fiddle and flute"),
    _d("flute and harp, wedding ceremony, soft", ensemble="flute and harp"),
    _d("nylon guitar fingerpicking a tune", instruments=("guitar",), instrument_family="plucked"),
    _d("banjo tune, plucky and bright", instruments=("banjo",)),
    _d("a harmonica playing a simple tune, campfire feel", instruments=("harmonica",)),
    _d("squeezebox music, accordion or mouth organ", instruments=_SQUEEZE),
    _d("trumpet solo, a bit ceremonial", ensemble="trumpet"),
    _d("French horn melody, warm and round", instruments=("french horn",)),
    _d("clarinet playing a folk melody", ensemble="clarinet"),
    _d("oboe solo, pastoral", ensemble="oboe"),
    _d("a recorder, like primary-school music class", ensemble="recorder"),
    _d("harp music, something celestial", instruments=("harp",)),
    _d("plucked strings only, guitar harp or banjo", instrument_family="plucked"),
    _d("woodwinds, any", instrument_family="woodwind"),
    _d("bowed strings, not plucked", instrument_family="strings"),
    _d("keyboard music, piano or harpsichord", instrument_family="keyboard"),
    _d("choral, lots of voices", ensemble="choir"),
    _d("a trombone somewhere in the mix", instruments=("trombone",)),
]

_COMBINED = [
    _d("fast Irish reel on the fiddle for a montage", tradition=("Irish", "Celtic"), tune_type="reel",
       instruments=_FIDDLE),
    _d("Scottish pipes playing a march", tradition=("Scottish", "Celtic"), ensemble="bagpipes",
       tune_type="march"),
    _d("slow minor air on the whistle, proper lonesome", tune_type="air", mode_family="minor",
       instruments=_FLUTES),
    _d("a jig on the accordion, six-eight obviously", tune_type="jig", instruments=("accordion",),
       meter_class="compound"),
    _d("stately organ chorale in a minor key", tune_type="chorale", ensemble="church organ",
       mode_family="minor"),
    _d("major-key Bach chorale, sung", composer=_BACH, mode_family="major", instrument_family="voice"),
    _d("a brisk string quartet movement in a major key", tune_type="quartet movement",
       tempo_bucket="fast", mode_family="major"),
    _d("slow movement from a classical quartet", tune_type="quartet movement", tempo_bucket="slow"),
    _d("Irish tunes on the harp, gentle", tradition=("Irish", "Celtic"), instruments=("harp",)),
    _d("German folk song on the recorder", region="Germany", tune_type="folk song",
       instruments=("recorder",)),
    _d("renaissance dance feel, in three, on a consort", tradition="Renaissance", meter_class="triple",
       ensemble="recorder consort"),
    _d("a quick hornpipe on the banjo", tune_type="hornpipe", instruments=("banjo",),
       tempo_bucket="fast"),
    _d("minor-key jig for a spooky Halloween ceilidh", tune_type="jig", mode_family="minor"),
    _d("slow major-key tune on piano for a wedding video", ensemble="solo piano",
       mode_family="major", tempo_bucket="slow"),
    _d("flute, six-eight, lively", instruments=("flute",), meter_class="compound",
       tempo_bucket="fast"),
    _d("slow waltz on the accordion, French café style", meter_class="triple", tempo_bucket="slow",
       instruments=("accordion",)),
    _d("a reel in D for the session, fiddle preferred", tune_type="reel", key="D",
       instruments=_FIDDLE),
    _d("minor chorale harmonised for brass quartet", tune_type="chorale", ensemble="brass quartet",
       mode_family="minor"),
    _d("an old English or American fiddle tune", corpus_family="folk", instruments=_FIDDLE),
    _d("O'Neill's tunes, the Chicago collection, any instrument", collection="O'Neill's Music of Ireland"),
    _d("something from Ryan's Mammoth", collection="Ryan's Mammoth Collection"),
    _d("slow airs from Aird's collection", collection="Aird's Airs", tune_type="air"),
    _d("Essen folk songs in a minor key", collection="Essen Folksong Collection", mode_family="minor"),
    _d("moderate-tempo folk song, sung, in three", tune_type="folk song", tempo_bucket="moderate",
       meter_class="triple", instrument_family="voice"),
    _d("baroque church music, organ or choir", tradition="Baroque", instrument_family=("organ", "voice")),
]

#: The whole set, in the order written; 150 descriptions.
REAL_DESCRIPTIONS: tuple[RealDescription, ...] = (*_METER, *_MODE_TEMPO, *_TUNE_TYPES, *_ENSEMBLES,
                                                  *_COMBINED)


def relevant(desc: RealDescription, row: Mapping[str, Any]) -> bool:
    """Whether a catalog row satisfies every constraint of ``desc``.

    A list field (``instruments``, ``tags``) matches when any of its values is accepted; a
    missing or empty field never matches, so a row without a mode is not relevant to "minor".

    Args:
        desc: the description and its constraints.
        row: a demo-catalog metadata row.

    Returns:
        True when all constraints hold.
    """
    for field, accepted in desc.constraints.items():
        value = row.get(field)
        if value is None:
            return False
        if field in LIST_FIELDS or isinstance(value, list | tuple):
            if not any(v in accepted for v in value):
                return False
        elif value not in accepted:
            return False
    return True
