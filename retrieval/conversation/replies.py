"""Replies: what changed this turn, what could not be done, and why each result is there.

Everything said is checked against the result's own metadata, never guessed: a reason is
listed only when the track satisfies it ("132 BPM", "no piano"), and "kept the reel feel of #2"
names the attributes the result really shares with the liked track.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retrieval.conversation.attributes import facts as track_facts

_SHARED = (("tune_type", "{}"), ("collection", "{} collection"), ("ensemble", "{}"),
           ("meter", "{} time"))


def satisfied(chip: dict[str, Any], f: dict[str, Any]) -> bool:
    """Whether a track's facts ``f`` obey one active constraint chip."""
    kind, field, value = chip["kind"], chip["field"], chip.get("value")
    if kind in ("include", "exclude"):
        has = {"mode": f["mode"] == value, "meter": f["meter"] == value,
               "instrument": value in f["instruments"], "family": value in f["families"]
               }.get(field, False)
        return has if kind == "include" else not has
    if kind == "bound":
        v = f.get(field)
        lo, hi = chip.get("lo"), chip.get("hi")
        return v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)
    if kind == "entity":
        got = f.get(field)
        return got is not None and str(got).lower() == str(value).lower()
    return False


def reasons(meta: Any, chips: Sequence[dict[str, Any]], liked: Sequence[tuple[str, Any]]
            ) -> list[str]:
    """Why one result is on the page: the constraints it obeys, what it shares with likes.

    Args:
        meta: the result's metadata (a ``TrackMeta``-like row).
        chips: the active constraints.
        liked: ``(label, metadata)`` of the positive example closest to this result, if any.
    """
    f = track_facts(meta)
    out = []
    for chip in chips:
        if satisfied(chip, f):
            if chip["kind"] == "bound" and chip["field"] == "tempo" and f["tempo"]:
                out.append(f"{f['tempo']:.0f} BPM ({chip['label']})")
            else:
                out.append(chip["label"])
    for label, other in liked[:1]:
        g = track_facts(other)
        shared = [fmt.format(f[k]) for k, fmt in _SHARED if f.get(k) and f.get(k) == g.get(k)]
        if shared:
            out.append(f"kept the {' / '.join(shared[:2])} feel of {label}")
    return out


def compose_reply(changes: Sequence[str], kept: str | None, notes: Sequence[str], n_results: int,
                  total_shown: int) -> str:
    """One paragraph: "Faster, no piano; kept the reel feel of #2." plus what failed and counts."""
    parts = []
    head = ", ".join(changes)
    if kept:
        head = f"{head}; {kept}" if head else kept
    if head:
        parts.append(head[:1].upper() + head[1:] + ".")
    for n in notes:
        parts.append(n[:1].upper() + n[1:] + ("" if n.endswith(".") else "."))
    if n_results:
        parts.append(f"Here are {n_results} results ({total_shown} shown so far).")
    else:
        parts.append("Nothing left in the catalog matches; try removing a constraint.")
    return " ".join(parts)
