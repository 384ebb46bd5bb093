"""Key-normalised melody tokens: a small vocabulary a tiny sequence model can learn on a CPU.

A melody (the top line of a piece) becomes a header of attribute tokens and then one group of
tokens per note, bar by bar::

    BOS  METER:6/8 MODE:minor TEMPO:fast TYPE:jig ENS:solo fiddle
    BAR  POS:0 PITCH:69 DUR:6   POS:6 PITCH:72 DUR:3 ...  BAR ...  EOS

Why this shape:

- **Key-normalised**: every piece is transposed so its tonic is C (major) or A (minor) before
  encoding (:func:`normalising_shift`), so "the third above the tonic" is one token whatever
  key the corpus wrote it in, and the model spends no capacity on twelve copies of each
  pattern. The renderer transposes back to any key.
- **Position in the bar, not a running time-shift**: ``POS:k`` is the onset's distance from
  the last ``BAR`` on a grid of :data:`GRID` steps per quarter note (1/12: sixteenths and
  eighth-note triplets are both exact). Meter is then visible in every bar (a 3/4 melody never
  puts a note at position 36), which is what lets the generated score honour a requested
  meter, and a bar can be checked for length when decoding.
- **Monophonic**: one note per onset (the highest, as a listener follows the top line);
  accompaniment is added afterwards by :func:`generation.symbolic.arrange.accompany`.
- **Small**: 96 positions, 49 pitches (MIDI 45..93 after normalisation; notes outside are
  moved by octaves), 16 durations (nearest on a log scale), the attribute values below:
  about 250 tokens in all.

The header's attribute tokens come first so a model conditioned on an audio embedding
*predicts* them (interpretable, checkable), and explicit words in a query can override them by
forcing the token instead of sampling it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from generation.errors import GenerationError
from generation.symbolic.render import Events

GRID = 12  # steps per quarter note
PITCH_LO, PITCH_HI = 45, 93  # after key normalisation (A2..A6)
DURATIONS = (1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 30, 36, 48, 72, 96)  # in grid steps
#: Meters the vocabulary knows, with (bar, beat) lengths in quarter notes.
METERS: dict[str, tuple[float, float]] = {
    "2/4": (2.0, 1.0), "3/4": (3.0, 1.0), "4/4": (4.0, 1.0), "2/2": (4.0, 2.0),
    "3/8": (1.5, 1.5), "6/8": (3.0, 1.5), "9/8": (4.5, 1.5), "12/8": (6.0, 1.5),
    "3/2": (6.0, 2.0), "6/4": (6.0, 3.0), "4/2": (8.0, 2.0),
}
MODES = ("major", "minor")
TEMPI = ("slow", "moderate", "fast", "unknown")
TUNE_TYPES = ("reel", "jig", "slip jig", "hornpipe", "air", "strathspey", "march", "clog",
              "highland fling", "waltz", "polka", "slide", "folk song", "chorale",
              "quartet movement", "mass movement", "madrigal", "motet", "trecento song", "other")
ENSEMBLES = ("solo fiddle", "solo violin", "solo cello", "solo flute", "tin whistle", "clarinet",
             "recorder", "oboe", "accordion", "harmonica", "bagpipes", "solo piano",
             "harpsichord", "nylon-string guitar", "harp", "banjo", "trumpet", "french horn",
             "solo voice", "church organ", "fiddle and flute", "fiddle and accordion",
             "flute and harp", "string quartet", "string orchestra", "choir", "brass quartet",
             "woodwind quartet", "recorder consort", "guitar", "unknown")
MAX_POS = 96  # the longest bar (4/2) in grid steps

#: Header attribute order: the model predicts them in this order.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "meter": tuple(METERS), "mode": MODES, "tempo_class": TEMPI, "tune_type": TUNE_TYPES,
    "ensemble": ENSEMBLES,
}


def _build_vocab() -> list[str]:
    vocab = ["PAD", "BOS", "EOS", "BAR"]
    for name, values in ATTRIBUTES.items():
        vocab += [f"{name}={v}" for v in values]
    vocab += [f"POS:{k}" for k in range(MAX_POS)]
    vocab += [f"PITCH:{p}" for p in range(PITCH_LO, PITCH_HI + 1)]
    vocab += [f"DUR:{d}" for d in DURATIONS]
    return vocab


VOCAB: tuple[str, ...] = tuple(_build_vocab())
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(VOCAB)}
PAD, BOS, EOS, BAR = 0, 1, 2, 3
POS0 = TOKEN_ID["POS:0"]
PITCH0 = TOKEN_ID[f"PITCH:{PITCH_LO}"]
DUR0 = TOKEN_ID[f"DUR:{DURATIONS[0]}"]
HEADER_LEN = 1 + len(ATTRIBUTES)  # BOS + one token per attribute


def attribute_ids(name: str) -> np.ndarray:
    """Token ids of every value of attribute ``name`` (for masking a sampler's choices)."""
    return np.array([TOKEN_ID[f"{name}={v}"] for v in ATTRIBUTES[name]], np.int64)


def attribute_token(name: str, value: str | None) -> int:
    """The token of ``name=value``; unknown values map to ``other``/``unknown`` where it exists.

    Raises:
        GenerationError: an unknown attribute, or a value outside a closed set (meter, mode).
    """
    if name not in ATTRIBUTES:
        raise GenerationError(f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
    key = f"{name}={value}"
    if key in TOKEN_ID:
        return TOKEN_ID[key]
    for fallback in ("other", "unknown"):
        if fallback in ATTRIBUTES[name]:
            return TOKEN_ID[f"{name}={fallback}"]
    raise GenerationError(f"{name} must be one of {', '.join(ATTRIBUTES[name])}, got {value!r}")


@dataclass(frozen=True)
class Melody:
    """A decoded melody: note events plus the header's attributes.

    Attributes:
        events: voice-0 note events (key-normalised pitches), onsets from bar 0.
        attributes: ``{"meter", "mode", "tempo_class", "tune_type", "ensemble"}`` as decoded.
    """

    events: Events
    attributes: dict[str, str]


def normalising_shift(tonic_pc: int, minor: bool) -> int:
    """Semitones in ``[-6, 5]`` that move tonic ``tonic_pc`` to C (major) or A (minor)."""
    target = 9 if minor else 0
    return int((target - tonic_pc + 6) % 12 - 6)


def melody_line(ev: Events, voice: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top line of ``voice``: one (onset, duration, pitch) per distinct onset, highest pitch.

    Returns:
        ``onset`` float64 ``[n]``, ``dur`` float64 ``[n]``, ``pitch`` int ``[n]``, sorted by
        onset; a note's duration is cut at the next onset (a monophonic line never overlaps).
    """
    sel = ev.voice == voice
    on, du, pi = ev.onset[sel], ev.dur[sel], ev.pitch[sel].astype(int)
    if not len(on):
        raise GenerationError(f"no notes in voice {voice}")
    order = np.lexsort((-pi, np.round(on, 6)))
    on, du, pi = on[order], du[order], pi[order]
    first = np.ones(len(on), bool)
    first[1:] = np.round(on[1:], 6) != np.round(on[:-1], 6)
    on, du, pi = on[first], du[first], pi[first]
    nxt = np.append(on[1:], np.inf)
    return on, np.minimum(du, nxt - on), pi


def _bar_start(ev: Events) -> float:
    """Where bar 0 starts: one bar before the first downbeat when the piece has a pickup."""
    down = ev.onset[ev.strength >= 1.0 - 1e-6]
    origin = float(down[0] % ev.bar_ql) if len(down) else 0.0
    return origin - ev.bar_ql if origin > 1e-6 else 0.0


def _fold(p: int) -> int:
    while p < PITCH_LO:
        p += 12
    while p > PITCH_HI:
        p -= 12
    return p


def _dur_token(steps: float, gap: float) -> int:
    """The nearest duration on a log scale, but never past the next onset (``gap`` steps).

    Capping keeps the line monophonic without a cut at decoding, so decoding and encoding
    again gives the same tokens.
    """
    durs = np.asarray(DURATIONS, float)
    k = int(np.argmin(np.abs(np.log(durs) - np.log(max(steps, 0.5)))))
    if durs[k] > gap:
        k = max(int(np.searchsorted(durs, gap, side="right")) - 1, 0)
    return DUR0 + k


def encode(ev: Events, meter: str, attributes: Mapping[str, str | None], shift: int = 0,
           max_tokens: int | None = None) -> list[int]:
    """Events -> token ids: header, then ``BAR`` and ``POS PITCH DUR`` per note, then ``EOS``.

    Args:
        ev: the piece; its voice 0 is encoded (:func:`melody_line`).
        meter: a key of :data:`METERS` (the header's and the decoder's bar length).
        attributes: values for ``mode``, ``tempo_class``, ``tune_type``, ``ensemble`` (missing or
            None: ``unknown``/``other``; ``mode`` defaults to major).
        shift: semitones added to every pitch (:func:`normalising_shift` of the piece's key).
        max_tokens: stop at the last complete bar that fits (no ``EOS`` then: the piece goes on).

    Raises:
        GenerationError: an unknown meter.
    """
    if meter not in METERS:
        raise GenerationError(f"meter must be one of {', '.join(METERS)}, got {meter!r}")
    bar_q = METERS[meter][0]
    bar_steps = int(round(bar_q * GRID))
    toks = [BOS, attribute_token("meter", meter),
            attribute_token("mode", attributes.get("mode") or "major")]
    for name in ("tempo_class", "tune_type", "ensemble"):
        toks.append(attribute_token(name, attributes.get(name)))
    on, du, pi = melody_line(ev)
    steps = np.round((on - _bar_start(ev)) * GRID).astype(int)
    first = np.append(True, np.diff(steps) > 0)  # onsets closer than the grid: the first wins
    steps, du, pi = steps[first], du[first], pi[first]
    gaps = np.append(np.diff(steps), np.inf)
    bars = steps // bar_steps
    last_bar = -1
    for s, b, d, p, gap in zip(steps, bars, du, pi, gaps, strict=True):
        group: list[int] = []
        while last_bar < b:
            group.append(BAR)
            last_bar += 1
        pos = int(s - b * bar_steps)
        group += [POS0 + pos, PITCH0 + _fold(int(p) + shift) - PITCH_LO, _dur_token(d * GRID, gap)]
        if max_tokens is not None and len(toks) + len(group) > max_tokens:
            return _cut_at_bar(toks)
        toks += group
    if max_tokens is not None and len(toks) + 1 > max_tokens:
        return _cut_at_bar(toks)
    return toks + [EOS]


def _cut_at_bar(toks: list[int]) -> list[int]:
    """``toks`` up to (not including) its last ``BAR``: only complete bars survive a cut."""
    last = max(i for i, t in enumerate(toks) if t == BAR) if BAR in toks else len(toks)
    return toks[:last] if last > HEADER_LEN else toks


def header_attributes(tokens: Sequence[int]) -> dict[str, str]:
    """The attribute values named in a token sequence's header (those present)."""
    out: dict[str, str] = {}
    for t in tokens[:HEADER_LEN + 1]:
        name, sep, value = VOCAB[int(t)].partition("=")
        if sep and name in ATTRIBUTES:
            out[name] = value
    return out


def decode(tokens: Sequence[int], default_meter: str = "4/4") -> Melody:
    """Token ids -> a :class:`Melody` (events in voice 0, key-normalised pitches).

    Tolerant, because sampled sequences can be malformed: a note group is complete when it has
    a position, a pitch and a duration in that order; anything else (a stray duration, a
    header token in the body, a position past the bar) is skipped. Notes are cut where the next
    one starts, so the line stays monophonic.

    Raises:
        GenerationError: no complete note.
    """
    attrs = header_attributes(tokens)
    meter = attrs.get("meter", default_meter)
    bar_q, beat_q = METERS[meter]
    bar_steps = int(round(bar_q * GRID))
    bar, pos, pitch = -1, None, None
    notes: list[tuple[int, int, int]] = []  # (onset step, pitch, duration steps)
    for t in tokens:
        t = int(t)
        if t == EOS:
            break
        if t == BAR:
            bar, pos, pitch = bar + 1, None, None
        elif POS0 <= t < POS0 + MAX_POS:
            pos, pitch = (t - POS0 if t - POS0 < bar_steps else None), None
        elif PITCH0 <= t <= PITCH0 + PITCH_HI - PITCH_LO and pos is not None:
            pitch = PITCH_LO + t - PITCH0
        elif DUR0 <= t < DUR0 + len(DURATIONS) and pitch is not None and pos is not None:
            notes.append((max(bar, 0) * bar_steps + pos, pitch, DURATIONS[t - DUR0]))
            pos, pitch = None, None
    if not notes:
        raise GenerationError("the token sequence holds no complete note")
    return Melody(_events(notes, bar_q, beat_q, max(bar + 1, 1)), attrs)


def _events(notes: list[tuple[int, int, int]], bar_q: float, beat_q: float, n_bars: int) -> Events:
    arr = np.array(sorted(notes), dtype=float)
    on = arr[:, 0] / GRID
    du = arr[:, 2] / GRID
    nxt = np.append(on[1:], np.inf)
    du = np.where(nxt - on > 1e-9, np.minimum(du, nxt - on), du)
    keep = np.append(np.diff(on) > 1e-9, True)  # one note per onset (the last group wins)
    on, du, pi = on[keep], du[keep], arr[keep, 1].astype(np.int16)
    inbar = np.mod(on, bar_q)
    strength = np.where(np.isclose(inbar, 0), 1.0,
                        np.where(np.isclose(np.mod(inbar, beat_q), 0), 0.5, 0.25)).astype(np.float32)
    length = max(float((on + du).max()), n_bars * bar_q)
    length = float(np.ceil(length / bar_q - 1e-9) * bar_q)
    return Events(onset=on, dur=du, pitch=pi, voice=np.zeros(len(on), np.int16), strength=strength,
                  length_ql=length, n_voices=1, bar_ql=bar_q, beat_ql=beat_q)
