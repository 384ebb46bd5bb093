"""The simulated user of ``eval-conversation``: it knows a hidden target's metadata, nothing else.

It never sees an embedding or a score: it reads the target's and the shown tracks' metadata
(:func:`retrieval.conversation.attributes.facts`) and talks in the phrasings of
:mod:`retrieval.evaluation.sim_phrases`. It opens with a vague request naming one or two of the
target's attributes, then each turn critiques the attribute on which the top result departs
most from the target (tempo, mode, meter, ensemble, density, register), or, when nothing
departs much, says "more like #j" for the shown track closest to the target by metadata (or
"not like #1" when the first is the furthest). A share of critiques (``noise``) are random.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from retrieval.evaluation import sim_phrases as P

ATTRIBUTES = ("tempo", "mode", "meter", "ensemble", "density", "register")


@dataclass(frozen=True)
class SimCritique:
    """One simulated message and what it means (for the satisfaction check)."""

    text: str
    kind: str  # tempo | mode | meter | with | without | density | register | more_like | not_like
    value: Any  # +1/-1, a mode or meter class, a family, an instrument, a position
    noisy: bool = False


def similarity(f: dict[str, Any], g: dict[str, Any]) -> float:
    """How alike two tracks are by metadata alone (higher is closer)."""
    s = 2.0 * (f["tune_type"] is not None and f["tune_type"] == g["tune_type"])
    s += float(f["mode"] is not None and f["mode"] == g["mode"])
    s += float(f["meter"] is not None and f["meter"] == g["meter"])
    s += float(bool(f["families"] & g["families"]))
    s += float(f["collection"] is not None and f["collection"] == g["collection"])
    if f["tempo"] and g["tempo"]:
        s += math.exp(-abs(math.log(f["tempo"] / g["tempo"])) / 0.2)
    s += 0.5 * (f["density"] == g["density"])
    if f["register"] is not None and g["register"] is not None:
        s += 0.5 * math.exp(-abs(f["register"] - g["register"]) / 0.3)
    return s


def departures(top: dict[str, Any], target: dict[str, Any]) -> dict[str, tuple[float, Any]]:
    """Per attribute: how far the top result is from the target, and the fix (direction/value)."""
    out: dict[str, tuple[float, Any]] = {}
    if top["tempo"] and target["tempo"]:
        r = math.log(target["tempo"] / top["tempo"])
        out["tempo"] = (abs(r) / math.log(1.15), 1 if r > 0 else -1)
    if target["mode"] and top["mode"] != target["mode"]:
        out["mode"] = (1.5, target["mode"])
    if target["meter"] and top["meter"] != target["meter"]:
        out["meter"] = (1.5, target["meter"])
    if target["families"] and not (top["families"] & target["families"]):
        extra = sorted(top["instruments"] - target["instruments"])
        fam = sorted(target["families"])[0]
        out["ensemble"] = (1.2, ("with", fam) if fam in P.FAMILY_WORDS or not extra
                           else ("without", extra[0]))
    d = target["density"] - top["density"]
    if abs(d) >= 1:
        out["density"] = (1.0, 1 if d > 0 else -1)
    if top["register"] is not None and target["register"] is not None:
        r = target["register"] - top["register"]
        if abs(r) >= 0.4:
            out["register"] = (abs(r) / 0.5, 1 if r > 0 else -1)
    return out


class SimulatedUser:
    """One user with one hidden target and one random stream (``seed``)."""

    def __init__(self, target: dict[str, Any], seed: int, noise: float = 0.1) -> None:
        self.target = target
        self.rng = random.Random(seed)
        self.noise = noise

    def _say(self, options: list[str], **kw: Any) -> str:
        return self.rng.choice(options).format(**kw)

    def opening(self) -> str:
        """A vague request naming one or two of the target's attributes."""
        t = self.target
        bucket = None if not t["tempo"] else ("slow" if t["tempo"] < 80 else
                                              "fast" if t["tempo"] >= 120 else "moderate")
        have = [a for a, ok in (("tune_type", t["tune_type"]), ("tempo", bucket),
                                ("mode", t["mode"]), ("family", t["families"])) if ok]
        chosen = self.rng.sample(have, min(len(have), self.rng.choice((1, 2)))) or ["tempo"]
        parts = []
        for a in chosen:
            if a == "tune_type":
                parts.append(self._say(P.OPENING["tune_type"], tune_type=t["tune_type"]))
            elif a == "tempo":
                parts.append(self._say(P.OPENING["tempo"][bucket or "moderate"]))
            elif a == "mode":
                parts.append(self._say(P.OPENING["mode"][t["mode"]]))
            else:
                parts.append(self._say(P.OPENING["family"], family=self._family(t["families"])))
        return ", ".join(parts) if parts else "play me something"

    def _family(self, families: set[str]) -> str:
        fam = sorted(families)[0]
        return self.rng.choice(P.FAMILY_WORDS.get(fam, [fam]))

    def critique(self, shown: list[dict[str, Any]]) -> SimCritique:
        """The next message, given the shown page's metadata (best first)."""
        if self.rng.random() < self.noise:
            return self._noisy(shown)
        dep = departures(shown[0], self.target)
        attr = max(dep, key=lambda a: (dep[a][0], -ATTRIBUTES.index(a)), default=None)
        if attr is not None and dep[attr][0] >= 1.0:
            return self._attribute(attr, dep[attr][1])
        sims = [similarity(f, self.target) for f in shown]
        j = max(range(len(sims)), key=lambda i: sims[i])
        if j == 0 and len(sims) > 1 and sims[0] < min(sims[1:]) + 1e-9:
            return SimCritique(self._say(P.CRITIQUE[("not_like", None)]), "not_like", 1)
        return SimCritique(self._say(P.CRITIQUE[("more_like", None)], j=j + 1,
                                     ordinal=P.ORDINAL.get(j + 1, str(j + 1))), "more_like", j + 1)

    def _attribute(self, attr: str, fix: Any, noisy: bool = False) -> SimCritique:
        if attr in ("tempo", "density", "register"):
            return SimCritique(self._say(P.CRITIQUE[(attr, fix)]), attr, fix, noisy)
        if attr in ("mode", "meter"):
            return SimCritique(self._say(P.CRITIQUE[(attr, fix)]), attr, fix, noisy)
        kind, value = fix
        if kind == "with":
            text = self._say(P.CRITIQUE[("with", None)], family=self._family({value}))
        else:
            text = self._say(P.CRITIQUE[("without", None)], instrument=value)
        return SimCritique(text, kind, value, noisy)

    def _noisy(self, shown: list[dict[str, Any]]) -> SimCritique:
        attr = self.rng.choice(("tempo", "mode", "meter", "density", "register"))
        if attr == "mode":
            fix: Any = self.rng.choice(("major", "minor"))
        elif attr == "meter":
            fix = self.rng.choice(("duple", "triple", "compound"))
        else:
            fix = self.rng.choice((1, -1))
        return self._attribute(attr, fix, noisy=True)


def obeyed(c: SimCritique, before: dict[str, Any], after: dict[str, Any]) -> bool | None:
    """Whether the new top result obeys the critique (None: not a checkable critique)."""
    if c.kind in ("tempo", "density", "register"):
        a, b = after[c.kind], before[c.kind]
        if a is None or b is None:
            return False
        return a > b if c.value > 0 else a < b
    if c.kind in ("mode", "meter"):
        return after[c.kind] == c.value
    if c.kind == "with":
        return c.value in after["families"]
    if c.kind == "without":
        return c.value not in after["instruments"]
    return None
