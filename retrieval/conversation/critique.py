"""The one structured form of a user's message: what the offline parser and the LLM both produce.

Steering reads only this, so the two understanders are interchangeable and testable apart, and
``understood`` (what the API echoes) is this record, so a user sees when they were misread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Relative attributes and what +1 means: tempo faster, energy more energetic, mood happier,
#: brightness brighter, density busier, register higher.
RELATIVE_ATTRS = ("tempo", "energy", "mood", "brightness", "density", "register")
RELATIVE_WORDS = {"tempo": ("slower", "faster"), "energy": ("calmer", "more energetic"),
                  "mood": ("sadder", "happier"), "brightness": ("darker", "brighter"),
                  "density": ("simpler", "busier"), "register": ("lower", "higher")}
#: Fields an inclusion or exclusion names: mode family, meter class, instrument, family.
CONSTRAINT_FIELDS = ("mode", "meter", "instrument", "family")
#: Catalog entities, fuzzy matched against the catalog's own values.
ENTITY_FIELDS = ("artist", "collection", "tune_type", "title")
TEMPO_WORDS = ("slow", "moderate", "fast")


@dataclass
class Critique:
    """One message, understood.

    Attributes:
        relative: attribute -> +1 or -1 (see :data:`RELATIVE_ATTRS`), relative to what was shown.
        tempo: an absolute tempo word ("slow", "fast") for an opening request.
        include: ``(field, value)`` the results must have ("instrument", "piano").
        exclude: ``(field, value)`` the results must not have.
        more_like: 1-based positions on the last page to move toward ("#2").
        less_like: positions to move away from ("not like the first").
        entities: ``(field, catalog value)`` found in the message (composer, collection...).
        free_text: what is left once the above is taken out (searched as text).
        repeat: the user asked to see already shown tracks again.
        notes: what could not be understood or done, in words for the reply.
    """

    relative: dict[str, int] = field(default_factory=dict)
    tempo: str | None = None
    include: list[tuple[str, str]] = field(default_factory=list)
    exclude: list[tuple[str, str]] = field(default_factory=list)
    more_like: list[int] = field(default_factory=list)
    less_like: list[int] = field(default_factory=list)
    entities: list[tuple[str, str]] = field(default_factory=list)
    free_text: str = ""
    repeat: bool = False
    notes: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when nothing at all was understood (not even free text)."""
        return not (self.relative or self.tempo or self.include or self.exclude or self.more_like
                    or self.less_like or self.entities or self.free_text.strip() or self.repeat)

    def has_steering(self) -> bool:
        """True when the message constrains or steers (a vague request does not)."""
        return bool(self.relative or self.tempo or self.include or self.exclude
                    or self.more_like or self.less_like or self.entities)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become two-item lists)."""
        d = asdict(self)
        for k in ("include", "exclude", "entities"):
            d[k] = [list(p) for p in d[k]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Critique:
        """The inverse of :meth:`to_dict`; unknown attributes, fields and values are refused.

        Raises:
            ValueError: a value outside the vocabulary (an LLM's answer is checked with this).
        """
        rel = {str(k): int(v) for k, v in (d.get("relative") or {}).items()}
        for k, v in rel.items():
            if k not in RELATIVE_ATTRS or v not in (-1, 1):
                raise ValueError(f"bad relative attribute {k!r}={v!r}")
        tempo = d.get("tempo")
        if tempo is not None and tempo not in TEMPO_WORDS:
            raise ValueError(f"bad tempo word {tempo!r}")

        def pairs(key: str, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
            out = [(str(f), str(v)) for f, v in (d.get(key) or [])]
            bad = [f for f, _ in out if f not in allowed]
            if bad:
                raise ValueError(f"bad {key} field {bad[0]!r}")
            return out

        return cls(relative=rel, tempo=tempo, include=pairs("include", CONSTRAINT_FIELDS),
                   exclude=pairs("exclude", CONSTRAINT_FIELDS),
                   more_like=[int(x) for x in d.get("more_like") or []],
                   less_like=[int(x) for x in d.get("less_like") or []],
                   entities=pairs("entities", ENTITY_FIELDS),
                   free_text=str(d.get("free_text") or ""), repeat=bool(d.get("repeat")),
                   notes=[str(n) for n in d.get("notes") or []])

    def labels(self) -> list[str]:
        """Short words for what was understood ("faster", "no piano", "like #2")."""
        out = [RELATIVE_WORDS[a][1 if s > 0 else 0] for a, s in self.relative.items()]
        if self.tempo:
            out.append(self.tempo)
        out += [_constraint_label(f, v) for f, v in self.include]
        out += [_constraint_label(f, v, negative=True) for f, v in self.exclude]
        out += [f"like #{p}" for p in self.more_like]
        out += [f"not like #{p}" for p in self.less_like]
        out += [f"{f.replace('_', ' ')}: {v}" for f, v in self.entities]
        if self.repeat:
            out.append("show again")
        return out


def _constraint_label(f: str, v: str, negative: bool = False) -> str:
    if f == "mode":
        text = f"{v} key"
    elif f == "meter":
        text = {"triple": "in three", "duple": "in two", "compound": "in six-eight"}.get(v, v)
    else:
        text = v
    if negative:
        return f"not {text}" if f in ("mode", "meter") else f"no {text}"
    return text if f in ("mode", "meter") else f"with {text}"


def constraint_label(f: str, v: str, negative: bool = False) -> str:
    """The chip text of one inclusion or exclusion ("no piano", "in three", "minor key")."""
    return _constraint_label(f, v, negative)
