"""The offline understander: a message -> one :class:`Critique`, with no model at all.

Rules over a small lexicon, applied in order, each consuming the words it used so that what is
left is the free text: references to shown tracks ("#2", "the second one"), comparatives
("faster", "less busy", "too slow"), inclusions and exclusions ("no piano", "with strings",
"in a minor key", "in three"), absolute tempo words for an opening request, then catalog
entities (composer, collection, tune type, title) fuzzy matched against the catalog's own
values. Contradictions within one message ("faster but slower") are dropped with a note.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from retrieval.conversation.attributes import INSTRUMENT_FAMILY
from retrieval.conversation.critique import Critique

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
             "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3,
             "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10,
             "top": 1, "last": -1}
_NEG_REF = r"(?:not|nothing|less|un|away from|different from|unlike|avoid|skip|no more)"

#: Base adjective -> (attribute, sign).
_BASE = {
    "fast": ("tempo", 1), "quick": ("tempo", 1), "rapid": ("tempo", 1), "speedy": ("tempo", 1),
    "slow": ("tempo", -1), "energetic": ("energy", 1), "lively": ("energy", 1),
    "upbeat": ("energy", 1), "intense": ("energy", 1), "punchy": ("energy", 1),
    "calm": ("energy", -1), "relaxed": ("energy", -1), "gentle": ("energy", -1),
    "mellow": ("energy", -1), "peaceful": ("energy", -1), "laid-back": ("energy", -1),
    "soothing": ("energy", -1), "chill": ("energy", -1), "happy": ("mood", 1),
    "cheerful": ("mood", 1), "joyful": ("mood", 1), "cheery": ("mood", 1), "sad": ("mood", -1),
    "melancholic": ("mood", -1), "melancholy": ("mood", -1), "gloomy": ("mood", -1),
    "somber": ("mood", -1), "sombre": ("mood", -1), "mournful": ("mood", -1),
    "bright": ("brightness", 1), "dark": ("brightness", -1), "busy": ("density", 1),
    "complex": ("density", 1), "dense": ("density", 1), "full": ("density", 1),
    "rich": ("density", 1), "layered": ("density", 1), "simple": ("density", -1),
    "sparse": ("density", -1), "minimal": ("density", -1), "bare": ("density", -1),
    "high": ("register", 1), "high-pitched": ("register", 1), "low": ("register", -1),
    "deep": ("register", -1), "low-pitched": ("register", -1), "bassy": ("register", -1),
}
_COMPARATIVE = {
    "faster": ("tempo", 1), "quicker": ("tempo", 1), "speedier": ("tempo", 1),
    "slower": ("tempo", -1), "livelier": ("energy", 1), "punchier": ("energy", 1),
    "calmer": ("energy", -1), "gentler": ("energy", -1), "mellower": ("energy", -1),
    "quieter": ("energy", -1), "softer": ("energy", -1), "happier": ("mood", 1),
    "cheerier": ("mood", 1), "sadder": ("mood", -1), "gloomier": ("mood", -1),
    "brighter": ("brightness", 1), "darker": ("brightness", -1), "busier": ("density", 1),
    "denser": ("density", 1), "fuller": ("density", 1), "richer": ("density", 1),
    "simpler": ("density", -1), "sparser": ("density", -1), "barer": ("density", -1),
    "higher": ("register", 1), "lower": ("register", -1), "deeper": ("register", -1),
}
_PHRASES = {  # multi-word comparatives
    r"speed (?:it|things) up|pick up the pace|up the tempo|more tempo": ("tempo", 1),
    r"slow (?:it|things) down|take it down|bring the tempo down": ("tempo", -1),
    r"more (?:energy|drive|punch)|livelier": ("energy", 1),
    r"less (?:energy|drive)|tone it down|more chill": ("energy", -1),
    r"more going on|more instruments|more parts|more layers": ("density", 1),
    r"fewer instruments|less going on|stripped[- ]down|fewer parts|more minimal": ("density", -1),
    r"higher[- ]pitched|higher register|up an octave": ("register", 1),
    r"lower[- ]pitched|lower register|down an octave|more bass": ("register", -1),
}
_FAMILY_WORDS = {
    "strings": "strings", "string": "strings", "bowed strings": "strings",
    "woodwinds": "woodwind", "woodwind": "woodwind", "winds": "woodwind",
    "brass": "brass", "horns": "brass", "keyboards": "keyboard", "keyboard": "keyboard",
    "keys": "keyboard", "voices": "voice", "vocals": "voice", "singing": "voice",
    "voice": "voice", "singers": "voice", "plucked strings": "plucked", "free reed": "free reed",
    "squeezebox": "free reed", "pipes": "bagpipes",
}
_INSTRUMENT_ALIASES = {"whistle": "tin whistle", "violins": "violin", "pianos": "piano",
                       "guitars": "guitar", "fiddles": "fiddle", "flutes": "flute",
                       "horn": "french horn", "bagpipe": "bagpipes", "cellos": "cello",
                       "squeeze box": "accordion", "vocal": "voice"}
_MODE_RX = [
    (r"\b(?:in )?(?:a |the )?minor(?:[- ]key)?\b|\bminor mode\b", ("mode", "minor")),
    (r"\b(?:in )?(?:a |the )?major(?:[- ]key)?\b|\bmajor mode\b", ("mode", "major")),
]
_METER_RX = [
    (r"\b(?:in (?:three|3)|3/4|3/8|3/2|triple(?: time| meter| metre)?|waltz time)\b",
     ("meter", "triple")),
    (r"\b(?:in (?:two|four|2|4)|2/4|4/4|2/2|duple(?: time| meter| metre)?|common time|"
     r"march time|cut time)\b", ("meter", "duple")),
    (r"\b(?:in (?:six|6)|6/8|9/8|12/8|6/4|compound(?: time| meter| metre)?|jig time|"
     r"six[- ]eight)\b", ("meter", "compound")),
]
_EXCLUDE_CUES = (r"no|without|not|minus|drop(?: the)?|lose(?: the)?|get rid of(?: the)?|"
                 r"less|fewer|skip(?: the)?|remove(?: the)?|take out(?: the)?|avoid|nothing with")
_INCLUDE_CUES = (r"with|more|add(?: some)?|featuring|on|played on|some|has|have|using|"
                 r"for|include|including")
_TEMPO_ABS = {"slow": "slow", "slowly": "slow", "leisurely": "slow", "calm": "slow",
              "relaxed": "slow", "gentle": "slow", "energetic": "fast", "moderate": "moderate",
              "medium": "moderate", "mid-tempo": "moderate", "fast": "fast", "quick": "fast",
              "lively": "fast", "brisk": "fast", "upbeat": "fast", "up-tempo": "fast"}
_REPEAT = r"\b(?:again|repeat|show (?:me )?(?:those|them|it) again|once more)\b"
_STOP = set("""a an the and or but i i'd id would like want need please some something
something's one ones it its it's this that these those me my you your can could give show
find get play let lets let's be is are was were more less bit little lot much very really just
kind sort of to for in on at by as so too than maybe perhaps now then also still same again
quite rather way music tune track song piece tunes tracks pieces stuff thing things feel
what how about ok okay yes no not hmm hey there here try instead keep actually even""".split())


@dataclass
class Vocabulary:
    """The catalog's own values the parser matches against (lower-cased for matching).

    Attributes:
        instruments: every instrument name in the catalog.
        values: entity field -> {lower-cased value: the catalog's spelling}.
    """

    instruments: set[str] = field(default_factory=set)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, instruments: Iterable[str], artists: Iterable[str | None],
              collections: Iterable[str | None], tune_types: Iterable[str | None],
              titles: Iterable[str | None]) -> Vocabulary:
        """From the catalog's distinct values (None and blanks skipped)."""
        def index(vals: Iterable[str | None]) -> dict[str, str]:
            return {v.strip().lower(): v for v in vals if v and v.strip()}

        return cls({i.strip().lower() for i in instruments if i and i.strip()},
                   {"artist": index(a for a in artists if a and a.lower() != "traditional"),
                    "collection": index(collections), "tune_type": index(tune_types),
                    "title": index(titles)})


class OfflineParser:
    """Understands messages with rules and the catalog's vocabulary (see the module doc)."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocab = vocabulary or Vocabulary()
        self._instrument_words = {**{i: i for i in INSTRUMENT_FAMILY},
                                  **{i: i for i in self.vocab.instruments},
                                  **_INSTRUMENT_ALIASES}
        names = sorted({*self._instrument_words, *_FAMILY_WORDS}, key=len, reverse=True)
        self._thing_rx = "(?:" + "|".join(re.escape(n) for n in names) + ")"
        self._title_tokens: dict[str, set[str]] = {}
        for low in self.vocab.values.get("title", {}):
            for tok in set(re.findall(r"[a-z]{4,}", low)):
                self._title_tokens.setdefault(tok, set()).add(low)

    def parse(self, message: str, page_size: int | None = None) -> Critique:
        """One message -> its critique; ``page_size`` (results on the last page) bounds refs."""
        c = Critique()
        text = " " + re.sub(r"\s+", " ", message.lower().replace("’", "'")) + " "
        if re.search(_REPEAT, text):
            c.repeat = True
            text = re.sub(_REPEAT, " ", text)
        text = self._references(text, c, page_size)
        text = self._instruments(text, c)
        text = self._modes_meters(text, c)
        text = self._comparatives(text, c)
        text = self._absolute_tempo(text, c)
        text = self._entities(text, c)
        self._contradictions(c)
        words = [w for w in re.findall(r"[a-z][a-z'-]*", text) if w not in _STOP]
        c.free_text = " ".join(words)
        return c

    # ------------------------------------------------------------------ rules

    def _references(self, text: str, c: Critique, page_size: int | None) -> str:
        ords = "|".join(sorted(map(re.escape, _ORDINALS), key=len, reverse=True))
        ref = (rf"(?:#\s?(\d+)|\b(?:number|no\.|result|track|option|item) (\d+)\b|"
               rf"\bthe ({ords})(?: one| track| result| tune| piece)?\b|"
               rf"\b(?:this|that) (?:one|track|tune|piece)\b)")
        rx = re.compile(rf"(\b{_NEG_REF}\b[\w ]{{0,12}}?\blike |\b{_NEG_REF} )?{ref}")
        for m in list(rx.finditer(text)):
            num, word = m.group(2) or m.group(3), m.group(4)
            pos = int(num) if num else (_ORDINALS[word] if word else 1)
            if pos == -1:
                pos = page_size or 10
            if page_size is not None and not 1 <= pos <= page_size:
                c.notes.append(f"there is no #{pos}: the last page showed {page_size} results")
            elif page_size is None:
                c.notes.append(f"nothing has been shown yet, so #{pos} refers to nothing")
            else:
                (c.less_like if m.group(1) else c.more_like).append(pos)
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        c.more_like = list(dict.fromkeys(p for p in c.more_like if p not in c.less_like))
        c.less_like = list(dict.fromkeys(c.less_like))
        return text

    def _thing(self, word: str) -> tuple[str, str] | None:
        w = word.strip()
        if w in _FAMILY_WORDS:
            return ("family", _FAMILY_WORDS[w])
        if w in self._instrument_words:
            return ("instrument", self._instrument_words[w])
        return None

    def _instruments(self, text: str, c: Critique) -> str:
        rx = re.compile(rf"\b(?:({_EXCLUDE_CUES})|({_INCLUDE_CUES}))\s+(?:the |a |an |some |any )?"
                        rf"({self._thing_rx})\b")
        for m in list(rx.finditer(text)):
            thing = self._thing(m.group(3))
            if thing is None:
                continue
            (c.exclude if m.group(1) else c.include).append(thing)
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        # A bare instrument word ("flute please") is an inclusion.
        for m in list(re.finditer(rf"\b({self._thing_rx})\b", text)):
            thing = self._thing(m.group(1))
            if thing and thing not in c.exclude:
                c.include.append(thing)
                text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        return text

    def _modes_meters(self, text: str, c: Critique) -> str:
        for rx, pair in (*_MODE_RX, *_METER_RX):
            for m in list(re.finditer(rx, text)):
                before = text[max(0, m.start() - 12):m.start()]
                neg = re.search(r"\b(?:not|no|never|nothing)\s*(?:in\s*)?$", before)
                (c.exclude if neg else c.include).append(pair)
                start = m.start() - (len(before) - neg.start() if neg else 0)
                text = text[:start] + " " * (m.end() - start) + text[m.end():]
        return text

    def _comparatives(self, text: str, c: Critique) -> str:
        found: list[tuple[str, int]] = []
        for rx, pair in _PHRASES.items():
            for m in list(re.finditer(rf"\b(?:{rx})\b", text)):
                found.append(pair)
                text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        base = "|".join(sorted(map(re.escape, _BASE), key=len, reverse=True))
        rx = re.compile(rf"\b(more|less|not (?:as|so)|too|a (?:bit|little) less|"
                        rf"a (?:bit|little) more)\s+({base})\b")
        for m in list(rx.finditer(text)):
            attr, sign = _BASE[m.group(2)]
            flip = m.group(1).startswith(("less", "not", "too")) or "less" in m.group(1)
            found.append((attr, -sign if flip else sign))
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        comp = "|".join(sorted(map(re.escape, _COMPARATIVE), key=len, reverse=True))
        for m in list(re.finditer(rf"\b(not |no )?({comp})\b", text)):
            attr, sign = _COMPARATIVE[m.group(2)]
            found.append((attr, -sign if m.group(1) else sign))
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        for attr, sign in found:
            if c.relative.get(attr, sign) != sign:
                c.notes.append(f"asked for both {_word(attr, 1)} and {_word(attr, -1)}; "
                               f"kept neither")
                c.relative[attr] = 0
            else:
                c.relative[attr] = sign
        c.relative = {a: s for a, s in c.relative.items() if s}
        return text

    def _absolute_tempo(self, text: str, c: Critique) -> str:
        if "tempo" in c.relative:
            return text
        words = "|".join(map(re.escape, _TEMPO_ABS))
        m = re.search(rf"\b({words})\b", text)
        if m:
            c.tempo = _TEMPO_ABS[m.group(1)]
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        for adj, (attr, sign) in _BASE.items():  # other absolute adjectives: mood words
            if attr == "mood" and re.search(rf"\b{re.escape(adj)}\b", text):
                c.include.append(("mode", "major" if sign > 0 else "minor"))
                text = re.sub(rf"\b{re.escape(adj)}\b", " ", text)
        return text

    def _entities(self, text: str, c: Critique) -> str:
        words = re.findall(r"[a-z0-9'][a-z0-9'-]*", text)
        for f in ("tune_type", "collection", "artist"):
            vals = self.vocab.values.get(f, {})
            for n in (3, 2, 1):
                for i in range(len(words) - n + 1):
                    gram = " ".join(words[i:i + n])
                    if gram in _STOP or len(gram) < 3:
                        continue
                    hit = _fuzzy(gram, vals, 0.86 if len(gram) > 4 else 1.0)
                    if f == "tune_type" and hit is None and gram.endswith("s"):
                        hit = _fuzzy(gram[:-1], vals, 0.9)
                    if hit and (f, hit) not in c.entities:
                        c.entities.append((f, hit))
                        text = re.sub(rf"\b{re.escape(gram)}\b", " ", text)
        title = self._title(text)
        if title:
            c.entities.append(("title", title))
            text = " ".join(w for w in text.split() if w not in title.lower().split())
        return text

    def _title(self, text: str) -> str | None:
        """A title sharing rare words with the message and close to one of its spans."""
        toks = set(re.findall(r"[a-z]{4,}", text)) - _STOP
        cands = set().union(*(self._title_tokens.get(t, set()) for t in toks)) if toks else set()
        best, best_r = None, 0.0
        for low in cands:
            n = len(low.split())
            words = text.split()
            for i in range(max(1, len(words) - n + 1)):
                r = difflib.SequenceMatcher(None, " ".join(words[i:i + n]), low).ratio()
                if r > best_r:
                    best, best_r = low, r
        return self.vocab.values["title"][best] if best and best_r >= 0.85 else None

    def _contradictions(self, c: Critique) -> None:
        both = set(c.include) & set(c.exclude)
        for pair in both:
            c.notes.append(f"asked both for and against {pair[1]}; kept neither")
        c.include = list(dict.fromkeys(p for p in c.include if p not in both))
        c.exclude = list(dict.fromkeys(p for p in c.exclude if p not in both))
        for fld in ("mode", "meter"):
            vals = [v for f, v in c.include if f == fld]
            if len(set(vals)) > 1:
                c.notes.append(f"asked for {' and '.join(vals)} at once; kept neither")
                c.include = [p for p in c.include if p[0] != fld]


def _word(attr: str, sign: int) -> str:
    from retrieval.conversation.critique import RELATIVE_WORDS

    return RELATIVE_WORDS[attr][1 if sign > 0 else 0]


def _fuzzy(gram: str, values: dict[str, str], cutoff: float) -> str | None:
    if gram in values:
        return values[gram]
    if cutoff >= 1.0:
        return None
    hit = difflib.get_close_matches(gram, list(values), n=1, cutoff=cutoff)
    return values[hit[0]] if hit else None
