"""Natural-language captions derived only from the facts of a render.

Two disjoint caption styles exist on purpose:
- ``training_captions``: what the demo catalog ships and the encoder trains on (many
  templates, random attribute subsets, synonyms);
- ``paraphrase_captions``: evaluation-only phrasings with other templates and other synonyms,
  so an evaluation can tell whether the encoder learned the attributes or the templates.

Facts are plain dicts with keys: ensemble, family, instruments, tune_type, tempo_bpm,
tempo_bucket, mode, key, meter, meter_class, region, composer, collection, period.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

TEMPO_BUCKETS = ("slow", "moderate", "fast")


def tempo_bucket(bpm: float) -> str:
    """Slow below 80 heard beats per minute, fast from 120."""
    return "slow" if bpm < 80 else ("fast" if bpm >= 120 else "moderate")


def meter_class(meter: str | None) -> str | None:
    """Duple (2/4, 4/4, 2/2...), triple (3/4, 3/8, 3/2) or compound (6/8, 9/8, 12/8, 6/4)."""
    if not meter or "/" not in meter:
        return None
    num = int(meter.split("/")[0])
    if num in (6, 9, 12):
        return "compound"
    if num in (3,):
        return "triple"
    if num in (2, 4, 8, 1):
        return "duple"
    return None


def mode_family(mode: str | None) -> str | None:
    """Major or minor, the way a listener hears the third above the tonic."""
    if mode in ("major", "mixolydian", "lydian", "ionian"):
        return "major"
    if mode in ("minor", "dorian", "aeolian", "phrygian"):
        return "minor"
    return None


# --- training style -----------------------------------------------------------------------

_TEMPO_WORDS = {
    "slow": ["slow", "slow-paced", "gentle, slow", "relaxed", "stately"],
    "moderate": ["moderate", "mid-tempo", "medium-paced", "steady"],
    "fast": ["fast", "quick", "lively", "energetic", "up-tempo"],
}
_MODE_WORDS = {
    "major": ["major", "major-key", "bright, major-key", "happy-sounding"],
    "minor": ["minor", "minor-key", "dark, minor-key", "melancholic"],
}
_MODAL = {"dorian": "dorian", "mixolydian": "mixolydian", "lydian": "lydian",
          "phrygian": "phrygian", "aeolian": "aeolian"}
_METER_WORDS = {
    "duple": ["in duple time", "in two", "with a duple meter", "in common time"],
    "triple": ["in triple time", "in three", "with a waltz-like triple meter"],
    "compound": ["in compound time", "in lilting compound meter", "with a rolling six-eight feel"],
}
_FAMILY_WORDS = {
    "strings": "bowed strings", "keyboard": "keyboard", "organ": "pipe organ",
    "woodwind": "woodwinds", "brass": "brass", "voice": "voices", "free reed": "free reed",
    "plucked": "plucked strings", "bagpipes": "bagpipes",
}


def _tradition(f: Mapping[str, Any]) -> str | None:
    """An adjective for the style ("Irish", "German folk", "Baroque"), or None.

    Never doubled with the tune type: "German folk folk song" reads badly.
    """
    trad = f.get("period") or f.get("region")
    if trad and f.get("tune_type") == "folk song" and trad.endswith(" folk"):
        trad = trad[: -len(" folk")]
    return trad or None


def _tt(f: Mapping[str, Any]) -> str:
    t = f.get("tune_type") or "piece"
    return "tune" if t == "dance tune" else t


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _pick(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


def _fragments(f: Mapping[str, Any], rng: random.Random) -> dict[str, str]:
    bucket = f.get("tempo_bucket") or tempo_bucket(float(f.get("tempo_bpm") or 100))
    fam = mode_family(f.get("mode"))
    mode = f.get("mode")
    mode_word = _pick(rng, _MODE_WORDS[fam]) if fam else ""
    if mode in _MODAL and rng.random() < 0.5:
        mode_word = f"{mode}-mode"
    meter_word = _pick(rng, _METER_WORDS[f["meter_class"]]) if f.get("meter_class") else ""
    return {
        "tempo": _pick(rng, _TEMPO_WORDS[bucket]),
        "mode": mode_word,
        "meter": meter_word,
        "ens": f.get("ensemble") or "instruments",
        "tt": _tt(f),
        "trad": _tradition(f) or "",
        "composer": f.get("composer") or "",
        "family": _FAMILY_WORDS.get(f.get("family") or "", ""),
        "key": f"{f['key']} {mode if mode in ('major', 'minor') else (mode or '')}".strip()
        if f.get("key") else "",
        "bpm": f"{round(float(f['tempo_bpm']))} bpm" if f.get("tempo_bpm") else "",
    }


_TEMPLATES = [
    "{Tempo} {mode} {tt} played on {ens}",
    "A {tempo} {trad} {tt} for {ens}",
    "{Ens} playing a {tempo} {tt} {meter}",
    "{Trad} {tt}, {ens}, {tempo} tempo, {mode}",
    "{A_mode} {tt} performed by {ens} at a {tempo} pace",
    "{Ens}: {tt} in {key}, {meter}",
    "Instrumental {tt} on {ens}, {tempo} and {mode}",
    "{Tempo} {ens} music, {meter}",
    "{Composer} {tt} arranged for {ens}",
    "{A_tt} at {bpm}, played by {ens}",
    "{Ens} plays {a_mode} melody {meter}",
    "{Tempo} music for {family}: {tt}",
    "{tt}, {ens}, {tempo}",
    "{mode} {tt} {meter}",
    "{ens}",
    "{A_tempo} piece",
    "{A_tt}",
    "Music in a {mode} key",
    "{Tempo} {trad} music",
    "A recording of {ens}",
]


def _fill(template: str, frag: dict[str, str]) -> str:
    ext = dict(frag)
    for k, v in frag.items():
        ext[k.capitalize()] = v[:1].upper() + v[1:] if v else ""
    for k in ("mode", "tt", "tempo"):
        v = frag[k]
        ext[f"a_{k}"] = f"{_article(v)} {v}" if v else ""
        ext[f"A_{k}"] = ext[f"a_{k}"][:1].upper() + ext[f"a_{k}"][1:]
    text = template.format(**ext)
    text = " ".join(text.split()).replace(" ,", ",").replace(",,", ",").strip(" ,:")
    return text[:1].upper() + text[1:]


def training_captions(facts: Mapping[str, Any], n: int, seed: int) -> list[str]:
    """``n`` distinct captions in the training style (fewer if the facts run out)."""
    rng = random.Random(seed)
    out: list[str] = []
    order = list(range(len(_TEMPLATES)))
    rng.shuffle(order)
    for i in order:
        frag = _fragments(facts, rng)
        needed = [k for k in ("mode", "meter", "trad", "composer", "key", "bpm", "family")
                  if "{" + k in _TEMPLATES[i].lower() or "_" + k in _TEMPLATES[i]]
        if any(not frag[k] for k in needed):
            continue
        text = _fill(_TEMPLATES[i], frag)
        if text not in out:
            out.append(text)
        if len(out) >= n:
            break
    return out


def facts_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Caption facts back from a demo-catalog metadata row (to draw fresh captions later)."""
    return {
        "ensemble": row.get("ensemble"), "family": row.get("instrument_family"),
        "instruments": row.get("instruments"), "tune_type": row.get("tune_type"),
        "tempo_bpm": row.get("tempo_bpm"), "tempo_bucket": row.get("tempo_bucket"),
        "mode": row.get("mode"), "key": row.get("key"), "meter": row.get("meter"),
        "meter_class": row.get("meter_class"), "region": row.get("tradition"),
        "composer": row.get("composer"), "collection": row.get("collection"), "period": None,
    }


# --- evaluation-only paraphrases -----------------------------------------------------------

_P_TEMPO = {"slow": ["unhurried", "leisurely", "calm and unrushed"],
            "moderate": ["walking-pace", "even-tempered", "neither fast nor slow"],
            "fast": ["brisk", "driving", "racing", "upbeat"]}
_P_MODE = {"major": ["cheerful", "sunny", "joyful"], "minor": ["sorrowful", "gloomy", "wistful"]}
_P_ENS = {
    "strings": "a bowed string instrument", "keyboard": "a keyboard instrument",
    "organ": "an organ", "woodwind": "a wind instrument", "brass": "brass instruments",
    "voice": "singing voices", "free reed": "a squeezebox", "plucked": "plucked strings",
    "bagpipes": "pipes", "mixed": "a small band",
}
_P_TEMPLATES = [
    "Looking for something {p_mode} featuring {p_ens}",
    "Could you find a {p_tempo} number with {p_ens}?",
    "I need background music that feels {p_tempo} and {p_mode}",
    "{p_ens_cap} carrying a {p_mode} tune",
    "something {p_tempo} where you hear {p_ens}",
    "a {p_mode}, {p_tempo} track",
]


def paraphrase_facts(text: str) -> dict[str, str]:
    """The facts a paraphrase states (``tempo_bucket``, ``mode_family``, ``instrument_family``).

    Read back from the paraphrase vocabulary above, so an evaluation can tell which renders
    satisfy everything a paraphrase says: "a sorrowful, brisk track" fits every fast minor
    render, and no encoder can rank its own render above the rest of that group.
    """
    t = text.lower()
    out: dict[str, str] = {}
    for bucket, words in _P_TEMPO.items():
        if any(w in t for w in words):
            out["tempo_bucket"] = bucket
    for fam, words in _P_MODE.items():
        if any(w in t for w in words):
            out["mode_family"] = fam
    for family, phrase in _P_ENS.items():
        if phrase in t:
            out["instrument_family"] = family
    return out


def paraphrase_captions(facts: Mapping[str, Any], n: int, seed: int) -> list[str]:
    """Captions in phrasings the training captions never use (evaluation only)."""
    rng = random.Random(seed)
    bucket = facts.get("tempo_bucket") or tempo_bucket(float(facts.get("tempo_bpm") or 100))
    fam = mode_family(facts.get("mode"))
    out: list[str] = []
    for t in rng.sample(_P_TEMPLATES, len(_P_TEMPLATES)):
        if "{p_mode}" in t and not fam:
            continue
        ens = _P_ENS.get(facts.get("family") or "", "instruments")
        text = t.format(p_tempo=_pick(rng, _P_TEMPO[bucket]),
                        p_mode=_pick(rng, _P_MODE[fam]) if fam else "",
                        p_ens=ens, p_ens_cap=ens[:1].upper() + ens[1:])
        out.append(text)
        if len(out) >= n:
            break
    return out
