"""The memory of a conversation, as one JSON-ready dict, and how a critique changes it.

Kept as plain data so the database stores it as it is and a restarted server resumes exactly:

- ``texts``: what was asked in words (the opening request, then any free text);
- ``clip``: the opening clip's embedding, if one was uploaded;
- ``positives`` / ``negatives``: example track ids (likes, "more like #2"; dislikes, "not like
  #1"), with ``labels`` naming each for replies ("#2");
- ``chips``: the active constraints by key ("exclude:instrument:piano", "bound:tempo"), each
  removable by the user;
- ``directions``: accumulated relative moves per attribute (+2 = "faster, faster");
- ``shown``: every track shown (not repeated unless asked), ``page``: the last page, in order.
"""

from __future__ import annotations

from typing import Any

from retrieval.conversation.critique import RELATIVE_WORDS, Critique, constraint_label

#: Relative attributes answered by a bound on a metadata value, and the step of one critique.
BOUNDED = {"tempo": ("tempo", "ratio"), "energy": ("tempo", "ratio"),
           "density": ("density", 0.5), "register": ("register", 0.2),
           "brightness": ("register", 0.2)}
TEMPO_RANGES = {"slow": (None, 80.0), "moderate": (80.0, 120.0), "fast": (120.0, None)}


def new_state() -> dict[str, Any]:
    """An empty conversation memory."""
    return {"texts": [], "clip": None, "positives": [], "negatives": [], "labels": {},
            "chips": {}, "directions": {}, "shown": [], "page": [], "turn": 0}


def _chip(state: dict[str, Any], key: str, **chip: Any) -> None:
    chip["key"] = key
    chip["turn"] = state["turn"]
    state["chips"][key] = chip


def add_example(state: dict[str, Any], track_id: int, positive: bool, label: str) -> None:
    """A like or a dislike; the opposite list forgets the track (the latest word counts)."""
    keep, drop = ("positives", "negatives") if positive else ("negatives", "positives")
    if track_id in state[drop]:
        state[drop].remove(track_id)
    if track_id not in state[keep]:
        state[keep].append(track_id)
    state["labels"][str(track_id)] = label


def apply_constraints(state: dict[str, Any], c: Critique) -> list[str]:
    """Inclusions, exclusions, the absolute tempo and entities -> chips; notes on replacements."""
    notes: list[str] = []
    for field, value in c.include:
        if field in ("mode", "meter"):
            for key in [k for k, ch in state["chips"].items()
                        if ch["field"] == field and ch["kind"] == "include"]:
                del state["chips"][key]
        state["chips"].pop(f"exclude:{field}:{value}", None)
        _chip(state, f"include:{field}:{value}", kind="include", field=field, value=value,
              label=constraint_label(field, value))
    for field, value in c.exclude:
        state["chips"].pop(f"include:{field}:{value}", None)
        _chip(state, f"exclude:{field}:{value}", kind="exclude", field=field, value=value,
              label=constraint_label(field, value, negative=True))
    if c.tempo:
        lo, hi = TEMPO_RANGES[c.tempo]
        _chip(state, "bound:tempo", kind="bound", field="tempo", lo=lo, hi=hi, label=c.tempo)
    for field, value in c.entities:
        if field == "title":
            continue  # a title is an example track, added by the engine
        for key in [k for k, ch in state["chips"].items() if ch["kind"] == "entity"
                    and ch["field"] == field]:
            del state["chips"][key]
        _chip(state, f"entity:{field}:{value}", kind="entity", field=field, value=value,
              label=f"{field.replace('_', ' ')}: {value}")
    return notes


def apply_relative(state: dict[str, Any], c: Critique, ref: dict[str, Any] | None,
                   ref_label: str, tempo_step: float) -> list[str]:
    """Relative attributes -> a direction each, and a bound relative to the reference track.

    "faster" than the reference at 110 BPM is ``tempo >= 110 * step``. A new bound that
    contradicts an older one (faster than 120 after slower than 100) replaces it, and the
    returned note says so. "happier" / "sadder" is the major / minor family.
    """
    notes: list[str] = []
    for attr, sign in c.relative.items():
        d = state["directions"]
        d[attr] = max(-2, min(2, d.get(attr, 0) + sign))
        word = RELATIVE_WORDS[attr][1 if sign > 0 else 0]
        if attr == "mood":
            apply_constraints(state, Critique(include=[("mode", "major" if sign > 0 else "minor")]))
            continue
        field, step = BOUNDED[attr]
        v = None if ref is None else ref.get(field)
        if v is None:
            notes.append(f"moved toward {word} (nothing to compare with yet)")
            continue
        old = state["chips"].get(f"bound:{field}", {})
        lo, hi = old.get("lo"), old.get("hi")
        if sign > 0:
            lo = v * tempo_step if step == "ratio" else v + step
            if hi is not None and hi < lo:
                notes.append(f"dropped the earlier limit ({old.get('label')})")
                hi = None
        else:
            hi = v / tempo_step if step == "ratio" else v - step
            if lo is not None and lo > hi:
                notes.append(f"dropped the earlier limit ({old.get('label')})")
                lo = None
        _chip(state, f"bound:{field}", kind="bound", field=field, lo=lo, hi=hi,
              label=f"{word} than {ref_label}")
    return notes


def remove_chips(state: dict[str, Any], keys: list[str]) -> list[str]:
    """Forget constraints or examples the user removed; notes for keys that name nothing."""
    notes = []
    for key in keys:
        if key in state["chips"]:
            del state["chips"][key]
        elif key.startswith(("like:", "unlike:")) and key.split(":", 1)[1].isdigit():
            tid = int(key.split(":", 1)[1])
            for lst in ("positives", "negatives"):
                if tid in state[lst]:
                    state[lst].remove(tid)
        elif key.startswith("direction:"):
            state["directions"].pop(key.split(":", 1)[1], None)
        else:
            notes.append(f"nothing to remove called {key!r}")
    return notes


def chips(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every active, removable thing: constraints, then examples, as the page shows them."""
    out = [{"key": k, "label": ch["label"], "kind": ch["kind"]} for k, ch in state["chips"].items()]
    out += [{"key": f"like:{t}", "label": f"like {state['labels'].get(str(t), t)}",
             "kind": "like"} for t in state["positives"]]
    out += [{"key": f"unlike:{t}", "label": f"not like {state['labels'].get(str(t), t)}",
             "kind": "unlike"} for t in state["negatives"]]
    return out
