"""Arrangements: accompaniment, keyboard reduction and octave doubling over note events.

Every function takes :class:`~generation.symbolic.render.Events` and returns new Events (pure
numpy, the input untouched); the melody keeps voice 0 and its notes exactly, and each added
part gets a new voice so that a :class:`~generation.symbolic.render.RenderSpec` can give it
its own instrument (:data:`ACCOMPANIMENT_PROGRAMS` suggests some).

Harmony rule (documented because it is simple, not clever): the key is the Krumhansl-Kessler
profile that best correlates with the melody's duration-weighted pitch classes; each bar gets
the I, IV or V triad of that key (i, iv, v in minor: natural-minor triads, which suit modal
folk tunes better than a raised leading tone) whose chord tones the bar's melody notes hit
most, each note weighted by its duration and doubled on a downbeat; ties go to I, then V, then
IV; a bar without melody notes keeps the previous chord. Bars are counted from the first
downbeat (``strength == 1``), so a pickup bar is harmonised with the first chord.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from generation.errors import GenerationError
from generation.symbolic.render import Events

#: General MIDI programs that suit each accompaniment (for the added voices, in order).
ACCOMPANIMENT_PROGRAMS: dict[str, tuple[int, ...]] = {
    "block": (0,), "alberti": (0,), "oompah": (21, 32), "strum": (24,), "drone": (19,),
}
#: Keyboard programs for :func:`keyboard_reduction`.
KEYBOARD_PROGRAMS = {"piano": 0, "organ": 19, "harpsichord": 6}

_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

#: Accompaniment range (MIDI): chords between C3 and G4, bass between E1 and D3.
CHORD_RANGE = (48, 67)
BASS_RANGE = (28, 50)


def estimate_key(ev: Events, voice: int = 0) -> tuple[int, bool]:
    """(tonic pitch class, is minor) by Krumhansl-Kessler key profiles over ``voice``."""
    sel = ev.voice == voice
    hist = np.bincount(ev.pitch[sel] % 12, weights=ev.dur[sel], minlength=12)
    best = (-2.0, 0, False)
    for minor, prof in ((False, _MAJOR), (True, _MINOR)):
        for t in range(12):
            r = float(np.corrcoef(hist, np.roll(prof, t))[0, 1]) if hist.std() > 0 else 0.0
            if r > best[0] + 1e-12:
                best = (r, t, minor)
    return best[1], best[2]


def _bar_origin(ev: Events) -> float:
    down = ev.onset[ev.strength >= 1.0 - 1e-6]
    return float(down[0] % ev.bar_ql) if len(down) else 0.0


def bar_chords(ev: Events, voice: int = 0, key: tuple[int, bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One triad per bar by the rule in the module docstring.

    Returns:
        ``starts`` float64 ``[bars]`` (bar starts in quarter notes, the first may be negative
        for a pickup) and ``chords`` int ``[bars, 3]`` (root, third, fifth as pitch classes).
    """
    tonic, minor = key if key is not None else estimate_key(ev, voice)
    third = 3 if minor else 4
    # I, V, IV (tie order); in minor all three are natural-minor triads
    degrees = [(0, third), (7, 3 if minor else 4), (5, third)]
    cands = np.array([[(tonic + r) % 12, (tonic + r + q) % 12, (tonic + r + 7) % 12] for r, q in degrees])
    origin = _bar_origin(ev)
    first = origin - ev.bar_ql if origin > 1e-6 else 0.0
    n_bars = int(np.ceil((ev.length_ql - first) / ev.bar_ql - 1e-9))
    starts = first + ev.bar_ql * np.arange(max(n_bars, 1))
    sel = ev.voice == voice
    on, du, pc, st = ev.onset[sel], ev.dur[sel], ev.pitch[sel] % 12, ev.strength[sel]
    bar_of = np.clip(np.floor((on - first) / ev.bar_ql + 1e-9).astype(int), 0, len(starts) - 1)
    chords = np.empty((len(starts), 3), dtype=int)
    prev = 0
    for b in range(len(starts)):
        m = bar_of == b
        if m.any():
            w = du[m] * np.where(st[m] >= 1.0 - 1e-6, 2.0, 1.0)
            hits = (pc[m][None, :, None] == cands[:, None, :]).any(axis=2)  # [3, notes]
            scores = hits.astype(float) @ w
            prev = int(np.argmax(scores))  # first maximum: I, then V, then IV
        chords[b] = cands[prev]
    return starts, chords


def _place(pc: int, lo: int) -> int:
    """The pitch of class ``pc`` at or above ``lo`` (within an octave)."""
    return lo + (pc - lo) % 12


def _voicing(chord: np.ndarray, lo: int = CHORD_RANGE[0]) -> list[int]:
    """Close position, root at or above ``lo``: root, third, fifth."""
    root = _place(int(chord[0]), lo)
    return [root, _place(int(chord[1]), root), _place(int(chord[2]), root)]


def _strength(pos: np.ndarray, bar_ql: float, beat_ql: float) -> np.ndarray:
    """Metrical strength of added notes: 1 on a downbeat, 0.5 on a beat, 0.25 otherwise."""
    inbar = np.mod(pos, bar_ql)
    on_bar = np.isclose(inbar, 0) | np.isclose(inbar, bar_ql)
    on_beat = np.isclose(np.mod(inbar + 1e-9, beat_ql), 0, atol=1e-6)
    return np.where(on_bar, 1.0, np.where(on_beat, 0.5, 0.25)).astype(np.float32)


def _merge(ev: Events, on: list[float], du: list[float], pi: list[int], vo: list[int],
           origin: float) -> Events:
    """``ev`` plus the added notes (clipped to the piece), sorted stably by onset."""
    on_a = np.asarray(on, float)
    du_a = np.asarray(du, float)
    keep = (on_a >= -1e-9) & (on_a < ev.length_ql - 1e-9)
    on_a, du_a = on_a[keep], np.minimum(du_a[keep], ev.length_ql - on_a[keep])
    pi_a = np.asarray(pi, np.int16)[keep]
    vo_a = np.asarray(vo, np.int16)[keep]
    st_a = _strength(on_a - origin, ev.bar_ql, ev.beat_ql)
    onset = np.concatenate([ev.onset, on_a])
    order = np.argsort(onset, kind="stable")
    vx = None
    if ev.vel_offset is not None:
        vx = np.concatenate([ev.vel_offset, np.zeros(len(on_a), np.float32)])[order]
    return Events(
        onset=onset[order], dur=np.concatenate([ev.dur, du_a])[order],
        pitch=np.concatenate([ev.pitch, pi_a])[order], voice=np.concatenate([ev.voice, vo_a])[order],
        strength=np.concatenate([ev.strength, st_a])[order], length_ql=ev.length_ql,
        n_voices=max(ev.n_voices, int(vo_a.max()) + 1 if len(vo_a) else ev.n_voices),
        bar_ql=ev.bar_ql, beat_ql=ev.beat_ql, vel_offset=vx,
    )


def _compound(ev: Events) -> bool:
    return abs(ev.beat_ql - 1.5) < 1e-6 or abs(ev.beat_ql - 0.75) < 1e-6


def accompany(ev: Events, style: str, seed: int = 0, key: tuple[int, bool] | None = None) -> Events:
    """The melody (voice 0) with an accompaniment under it.

    Args:
        ev: events whose voice 0 is the melody (other voices are kept as they are).
        style: "block" (the bar's chord held), "alberti" (root-fifth-third-fifth in eighths),
            "oompah" (bass on each beat, chord off the beat: half a beat later in simple
            meters, on the 2nd and 3rd eighth of a compound beat), "strum" (a guitar chord
            spread low to high on each beat, high to low on off-beats, spread drawn from
            ``seed``) or "drone" (tonic and fifth held, re-struck every four bars).
        seed: for the strum's spread (the other styles do not draw).
        key: (tonic pitch class, minor), else :func:`estimate_key`.

    Returns:
        Events with the accompaniment in voice ``ev.n_voices`` (the oom-pah's bass in the next
        one), chords within :data:`CHORD_RANGE`, basses within :data:`BASS_RANGE`.

    Raises:
        GenerationError: unknown style.
    """
    if style not in ACCOMPANIMENT_PROGRAMS:
        raise GenerationError(f"style must be one of {sorted(ACCOMPANIMENT_PROGRAMS)}, got {style!r}")
    rng = np.random.default_rng(seed)
    key = key if key is not None else estimate_key(ev)
    starts, chords = bar_chords(ev, 0, key)
    cv, bv = ev.n_voices, ev.n_voices + 1
    on: list[float] = []
    du: list[float] = []
    pi: list[int] = []
    vo: list[int] = []

    def add(o: float, d: float, p: int, v: int) -> None:
        on.append(o)
        du.append(d)
        pi.append(p)
        vo.append(v)

    bar = ev.bar_ql
    if style == "drone":
        tonic = _place(key[0], CHORD_RANGE[0] - 12)
        for s in np.arange(0.0, ev.length_ql, 4 * bar):
            for p in (tonic, tonic + 7):
                add(float(s), 4 * bar, p, cv)
    for b, s in enumerate(starts):
        _accompany_bar(style, ev, float(s), chords[b], rng, add, cv, bv)
    return _merge(ev, on, du, pi, vo, _bar_origin(ev))


def _accompany_bar(style: str, ev: Events, s: float, pcs: np.ndarray, rng: np.random.Generator,
                   add: Callable[[float, float, int, int], None], cv: int, bv: int) -> None:
    """One bar of :func:`accompany`'s ``style`` (not drone) starting at ``s``, over chord ``pcs``."""
    bar, beat = ev.bar_ql, ev.beat_ql
    chord = _voicing(pcs)
    if style == "block":
        for p in chord:
            add(s, bar, p, cv)
    elif style == "alberti":
        pattern = [chord[0], chord[2], chord[1], chord[2]]
        for k, t in enumerate(np.arange(0.0, bar - 1e-9, 0.5)):
            add(s + t, 0.5, pattern[k % 4], cv)
    elif style == "oompah":
        bass = _place(int(pcs[0]), BASS_RANGE[0] + 8)
        offs = (0.5, 1.0) if _compound(ev) else (beat / 2,)
        for k, t in enumerate(np.arange(0.0, bar - 1e-9, beat)):
            # alternate root and fifth in the bass, as a tuba or a left hand does
            add(s + t, min(beat / 2, 0.5), bass if k % 2 == 0 else _place(int(pcs[2]), BASS_RANGE[0]), bv)
            for off in offs:
                for p in chord:
                    add(s + t + off, min(beat / 2, 0.5) * 0.8, p, cv)
    elif style == "strum":
        low = _place(int(pcs[0]), 40)  # guitar: root from E2 upwards
        shape = [low, low + 7, low + 12, _place(int(pcs[1]), low + 12), low + 19]
        shape = [p for p in shape if p <= CHORD_RANGE[1]]
        spread = rng.uniform(0.02, 0.05)  # quarter notes between strings
        for k, t in enumerate(np.arange(0.0, bar - 1e-9, beat / 2)):
            strings = shape if k % 2 == 0 else shape[::-1][:3]  # up-strokes catch the top strings
            for j, p in enumerate(strings):
                add(s + t + j * spread, beat / 2, p, cv)


def keyboard_reduction(ev: Events) -> Events:
    """Every part on one keyboard: all notes in voice 0, unisons struck once (the longer kept).

    Play it with one program from :data:`KEYBOARD_PROGRAMS` (``programs=((0,),)`` for piano).
    """
    on = np.round(ev.onset, 6)
    order = np.lexsort((-ev.dur, ev.pitch, on))  # by onset, pitch, longest first
    new = np.ones(len(order), bool)
    new[1:] = (on[order][1:] != on[order][:-1]) | (ev.pitch[order][1:] != ev.pitch[order][:-1])
    keep = np.sort(order[new])  # back in the original (onset-sorted) order
    return Events(
        onset=ev.onset[keep], dur=ev.dur[keep], pitch=ev.pitch[keep],
        voice=np.zeros(len(keep), np.int16), strength=ev.strength[keep], length_ql=ev.length_ql,
        n_voices=1, bar_ql=ev.bar_ql, beat_ql=ev.beat_ql,
        vel_offset=None if ev.vel_offset is None else ev.vel_offset[keep],
    )


def double_octaves(ev: Events, voices: tuple[int, ...] = (0,), shift: int = -12,
                   new_voice: bool = False, lowest: int = 21, highest: int = 108) -> Events:
    """Copies of ``voices`` ``shift`` semitones away (a multiple of 12), kept within range.

    Args:
        ev: the events.
        voices: which voices to double.
        shift: semitones, e.g. -12 for a bass an octave down.
        new_voice: the copies form a new voice (own instrument), else they join their voice.
        lowest: copies below this MIDI pitch are dropped.
        highest: copies above this MIDI pitch are dropped.
    """
    if shift == 0 or shift % 12:
        raise GenerationError(f"shift must be a non-zero multiple of 12, got {shift}")
    sel = np.isin(ev.voice, voices) & (ev.pitch + shift >= lowest) & (ev.pitch + shift <= highest)
    vo = np.full(int(sel.sum()), ev.n_voices, np.int16) if new_voice else ev.voice[sel]
    onset = np.concatenate([ev.onset, ev.onset[sel]])
    order = np.argsort(onset, kind="stable")
    return Events(
        onset=onset[order], dur=np.concatenate([ev.dur, ev.dur[sel]])[order],
        pitch=np.concatenate([ev.pitch, (ev.pitch[sel] + shift).astype(np.int16)])[order],
        voice=np.concatenate([ev.voice, vo])[order],
        strength=np.concatenate([ev.strength, ev.strength[sel]])[order], length_ql=ev.length_ql,
        n_voices=ev.n_voices + (1 if new_voice else 0), bar_ql=ev.bar_ql, beat_ql=ev.beat_ql,
        vel_offset=None if ev.vel_offset is None else np.concatenate([ev.vel_offset, ev.vel_offset[sel]])[order],
    )
