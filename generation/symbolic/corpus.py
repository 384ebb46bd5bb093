"""Real compositions from the music21 corpus that ships inside the PyPI package.

Enumerating sources is cheap (ABC collections are split at ``X:`` and only their header lines
are read); parsing is the slow part and happens later, in worker processes, one piece at a
time. Each ``Source`` carries the corpus facts that need no parse (title, collection, tune
type, region, written key and mode, meter) so that planning a catalog is instant.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from generation.errors import GenerationError


@dataclass(frozen=True)
class Source:
    """One piece of the corpus, before parsing.

    Attributes:
        piece_id: stable id, e.g. ``oneill/345`` (splits are assigned by it).
        family: the catalog family (``irish``, ``scottish``, ``essen``, ``chorale``,
            ``quartet``, ``renaissance``, ``medieval``, ``folk``).
        collection: human-readable collection name.
        path: corpus file (relative to the corpus root).
        abc: for ABC collections, the text of this one tune (headers + body).
        facts: corpus facts known without parsing (title, composer, tune_type, region, key,
            mode, meter...).
    """

    piece_id: str
    family: str
    collection: str
    path: str
    abc: str | None = None
    facts: dict[str, str | None] = field(default_factory=dict)


def corpus_root() -> Path:
    """The music21 corpus folder inside the installed package."""
    import music21

    root = Path(os.path.dirname(music21.__file__)) / "corpus"
    if not root.is_dir():
        raise GenerationError(f"music21 corpus not found at {root}; reinstall music21")
    return root


# --- ABC headers -------------------------------------------------------------------------

_RHYTHM_ALIASES = {
    "reel": "reel", "jig": "jig", "double jig": "jig", "single jig": "jig",
    "slip jig": "slip jig", "slipjig": "slip jig", "hornpipe": "hornpipe", "air": "air",
    "strathspey": "strathspey", "clog": "clog", "highland fling": "highland fling",
    "fling": "highland fling", "waltz": "waltz", "march": "march", "slide": "slide",
    "polka": "polka", "gavotte": "gavotte", "walkaround": "walkaround",
}

_MODE_SUFFIX = [
    ("mixolydian", "mixolydian"), ("mix", "mixolydian"), ("dorian", "dorian"),
    ("dor", "dorian"), ("phrygian", "phrygian"), ("phr", "phrygian"), ("lydian", "lydian"),
    ("lyd", "lydian"), ("aeolian", "aeolian"), ("aeo", "aeolian"), ("minor", "minor"),
    ("min", "minor"), ("major", "major"), ("maj", "major"), ("ionian", "major"),
    ("ion", "major"), ("m", "minor"),
]

_ESSEN_REGIONS = {
    "china": "China", "luxemburg": "Luxembourg", "lothringen": "Lorraine",
    "irland": "Ireland", "deutschland": "Germany", "mitteleuropa": "Central Europe",
    "osteuropa": "Eastern Europe", "suedosteuropa": "South-Eastern Europe",
    "nordeuropa": "Northern Europe", "schweiz": "Switzerland", "oesterreich": "Austria",
    "polen": "Poland", "elsass": "Alsace", "niederlande": "Netherlands",
    "frankreich": "France", "russland": "Russia", "ungarn": "Hungary",
    "jugoslavija": "Yugoslavia", "rumaenien": "Romania", "tschechien": "Czechia",
    "asien": "Asia", "amerika": "America", "daenemark": "Denmark", "schweden": "Sweden",
}


def parse_abc_key(value: str) -> tuple[str | None, str | None]:
    """Split an ABC ``K:`` value into (tonic, written mode or None).

    ``K:G`` carries no explicit mode (by convention major, but transcribers often write
    the signature of a minor tune that way), so the mode is only returned when spelled out.
    """
    v = value.strip().split()[0] if value.strip() else ""
    m = re.match(r"^([A-Ga-g])([#b]?)(.*)$", v)
    if not m:
        return None, None
    tonic = m.group(1).upper() + m.group(2)
    rest = m.group(3).lower()
    for suffix, mode in _MODE_SUFFIX:
        if rest.startswith(suffix):
            return tonic, mode
    return tonic, None


def _normalise_meter(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    if v == "C":
        return "4/4"
    if v == "C|":
        return "2/2"
    m = re.match(r"^(\d+)/(\d+)", v)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def _essen_region(origin: str | None) -> str | None:
    if not origin:
        return None
    parts = [p.strip().lower() for p in origin.split(",") if p.strip()]
    for p in reversed(parts):  # the most specific known place wins
        key = re.sub(r"[^a-z]", "", p)
        if key in _ESSEN_REGIONS:
            return _ESSEN_REGIONS[key]
    return _ESSEN_REGIONS.get(re.sub(r"[^a-z]", "", parts[0]), None) if parts else None


def split_abc(text: str) -> list[str]:
    """Split an ABC book at ``X:`` lines into one text per tune."""
    tunes: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("X:"):
            if current and any(ln.startswith("K:") for ln in current):
                tunes.append("\n".join(current))
            current = [line]
        elif current:
            current.append(line)
    if current and any(ln.startswith("K:") for ln in current):
        tunes.append("\n".join(current))
    return tunes


def abc_headers(tune: str) -> dict[str, str]:
    """First value of each single-letter ABC header field (until the first ``K:``)."""
    headers: dict[str, str] = {}
    for line in tune.splitlines():
        m = re.match(r"^([A-Za-z]):\s*(.*)$", line)
        if not m:
            continue
        headers.setdefault(m.group(1), m.group(2).strip())
        if m.group(1) == "K":
            break
    return headers


# --- Collections -------------------------------------------------------------------------

@dataclass(frozen=True)
class _AbcBook:
    glob: str
    family: str
    collection: str
    prefix: str
    region: str | None
    default_type: str | None


_ABC_BOOKS = [
    _AbcBook("oneills1850/*.abc", "irish", "O'Neill's Music of Ireland", "oneill", "Ireland", None),
    _AbcBook("ryansMammoth/*.abc", "scottish", "Ryan's Mammoth Collection", "ryan", None, None),
    _AbcBook("airdsAirs/*.abc", "scottish", "Aird's Airs", "aird", "Scotland", "air"),
    _AbcBook("miscFolk/*.abc", "folk", "English and American folk tunes", "misc", None, None),
    _AbcBook("essenFolksong/*.abc", "essen", "Essen Folksong Collection", "essen", None, "folk song"),
]

_QUARTET_DIRS = {
    "haydn": "Joseph Haydn", "mozart": "Wolfgang Amadeus Mozart", "beethoven": "Ludwig van Beethoven",
}


def _tune_type(rhythm: str | None, book: _AbcBook, title: str) -> str | None:
    if book.family == "essen":
        return "folk song"
    for text in (rhythm or "", title):
        t = text.strip().lower()
        for alias in sorted(_RHYTHM_ALIASES, key=len, reverse=True):
            if alias in t:
                return _RHYTHM_ALIASES[alias]
    return book.default_type


def _abc_sources(root: Path) -> list[Source]:
    sources: list[Source] = []
    for book in _ABC_BOOKS:
        for path in sorted(root.glob(book.glob)):
            if path.stem.startswith("test"):
                continue  # Essen's test files duplicate real songs
            text = path.read_text(encoding="latin-1")
            for i, tune in enumerate(split_abc(text)):
                h = abc_headers(tune)
                title = h.get("T", "").strip() or f"{book.collection} {path.stem} no. {i + 1}"
                tonic, mode = parse_abc_key(h.get("K", ""))
                meter = _normalise_meter(h.get("M"))
                if tonic is None or meter is None:
                    continue
                region = book.region
                if book.family == "essen":
                    region = _essen_region(h.get("O"))
                elif book.prefix == "ryan":
                    region = "Scotland" if "strathspey" in title.lower() else "Ireland and Scotland"
                elif book.prefix == "misc":
                    region = "America" if "american" in path.stem else "Northumberland, England"
                facts = {
                    "title": title,
                    "composer": None,
                    "tune_type": _tune_type(h.get("R"), book, title),
                    "region": region,
                    "key": tonic,
                    "mode": mode,
                    "meter": meter,
                }
                pid = f"{book.prefix}/{path.stem}/{i + 1}"
                sources.append(Source(pid, book.family, book.collection,
                                      str(path.relative_to(root)), tune, facts))
    return sources


def _file_sources(root: Path) -> list[Source]:
    sources: list[Source] = []
    for path in sorted((root / "bach").glob("bwv*.mxl")):
        facts = {"title": f"Chorale {path.stem.upper().replace('BWV', 'BWV ')}",
                 "composer": "Johann Sebastian Bach", "tune_type": "chorale",
                 "region": "Germany", "key": None, "mode": None, "meter": None}
        sources.append(Source(f"bach/{path.stem}", "chorale", "Bach chorales",
                              str(path.relative_to(root)), None, facts))
    for folder, composer in _QUARTET_DIRS.items():
        for path in sorted((root / folder).glob("*/movement*.mxl")):
            opus = path.parent.name
            if folder == "mozart" and opus == "k545":
                continue  # a piano sonata, not a quartet
            facts = {"title": f"String Quartet {opus}, {path.stem.replace('movement', 'movement ')}",
                     "composer": composer, "tune_type": "quartet movement",
                     "region": "Austria" if folder != "beethoven" else "Germany",
                     "key": None, "mode": None, "meter": None}
            sources.append(Source(f"{folder}/{opus}/{path.stem}", "quartet",
                                  "Classical string quartets", str(path.relative_to(root)), None, facts))
    for path in sorted((root / "palestrina").glob("*.krn")):
        if re.search(r"_\d+\.krn$", path.name):
            continue  # sub-movements of a mass section; keep whole sections only
        section = re.sub(r"_.*", "", path.stem)
        facts = {"title": f"{section} ({path.stem.replace('_', ' ')})",
                 "composer": "Giovanni Pierluigi da Palestrina", "tune_type": "mass movement",
                 "region": "Italy", "key": None, "mode": None, "meter": None}
        sources.append(Source(f"palestrina/{path.stem}", "renaissance", "Palestrina masses",
                              str(path.relative_to(root)), None, facts))
    for path in sorted((root / "monteverdi").glob("madrigal*.mxl")):
        facts = {"title": f"Madrigal {path.stem.replace('madrigal.', '')}",
                 "composer": "Claudio Monteverdi", "tune_type": "madrigal", "region": "Italy",
                 "key": None, "mode": None, "meter": None}
        sources.append(Source(f"monteverdi/{path.stem}", "renaissance", "Monteverdi madrigals",
                              str(path.relative_to(root)), None, facts))
    for path in sorted((root / "josquin").glob("*")):
        if path.suffix not in (".mxl", ".xml", ".krn"):
            continue
        facts = {"title": path.stem.replace("_", " "), "composer": "Josquin des Prez",
                 "tune_type": "motet", "region": "Franco-Flemish", "key": None, "mode": None,
                 "meter": None}
        sources.append(Source(f"josquin/{path.stem}", "renaissance", "Josquin des Prez",
                              str(path.relative_to(root)), None, facts))
    for path in sorted((root / "trecento").glob("*.xml")):
        facts = {"title": path.stem.split("-", 1)[-1].replace("_", " "), "composer": None,
                 "tune_type": "trecento song", "region": "Italy", "key": None, "mode": None,
                 "meter": None}
        sources.append(Source(f"trecento/{path.stem}", "medieval", "Trecento (14th-century Italy)",
                              str(path.relative_to(root)), None, facts))
    return sources


def list_sources(root: Path | None = None) -> list[Source]:
    """Every usable piece of the corpus, in a deterministic order."""
    root = root or corpus_root()
    return _abc_sources(root) + _file_sources(root)
