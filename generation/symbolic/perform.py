"""Performance variation over note events: rubato, swing, dynamics curves, onset jitter.

Pure numpy, deterministic per seed, each returning new :class:`~generation.symbolic.render.Events`
(times stay in quarter notes of the render's nominal tempo: rubato and swing move where notes
fall, the render's ``qbpm`` still sets the average speed). Dynamics go in
``Events.vel_offset``, which :func:`~generation.symbolic.render.render` adds to each note's
velocity. The render's own 8 ms onset jitter and velocity noise still apply on top.
"""

from __future__ import annotations

import numpy as np

from generation.errors import GenerationError
from generation.symbolic.render import Events


def _with(ev: Events, onset: np.ndarray, dur: np.ndarray, length_ql: float | None = None,
          vel_offset: np.ndarray | None = None) -> Events:
    """A copy of ``ev`` with new times (re-sorted stably by onset) and dynamics."""
    order = np.argsort(onset, kind="stable")
    vx = vel_offset if vel_offset is not None else ev.vel_offset
    return Events(
        onset=onset[order], dur=dur[order], pitch=ev.pitch[order], voice=ev.voice[order],
        strength=ev.strength[order], length_ql=ev.length_ql if length_ql is None else length_ql,
        n_voices=ev.n_voices, bar_ql=ev.bar_ql, beat_ql=ev.beat_ql,
        vel_offset=None if vx is None else np.asarray(vx, np.float32)[order],
    )


def _smooth_curve(rng: np.random.Generator, x: np.ndarray, period_ql: float, n: int = 3) -> np.ndarray:
    """A smooth random curve in about [-1, 1]: ``n`` sinusoids with periods around ``period_ql``."""
    y = np.zeros_like(x, dtype=float)
    for _ in range(n):
        p = period_ql * rng.uniform(0.5, 2.0)
        y += np.sin(2 * np.pi * x / p + rng.uniform(0, 2 * np.pi))
    return y / np.sqrt(n * 0.5) / 2.0


def rubato(ev: Events, depth: float = 0.08, period_bars: float = 4.0, seed: int = 0) -> Events:
    """Bend time along a smooth tempo curve.

    The local tempo is ``1 + depth * c(t)`` times the nominal one, with ``c`` a smooth random
    curve (periods of about ``period_bars`` bars), clipped to ``[1 - 2 depth, 1 + 2 depth]``;
    onsets and note ends move by the integral of its inverse, so order is kept and durations
    stretch with the tempo. ``depth=0.08`` is a +-8 % swell.
    """
    if not 0 <= depth < 0.5:
        raise GenerationError(f"rubato depth must be in [0, 0.5), got {depth}")
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, ev.length_ql, max(2, int(ev.length_ql * 16) + 1))
    tempo = 1.0 + depth * np.clip(_smooth_curve(rng, grid, period_bars * ev.bar_ql), -2, 2)
    warp = np.concatenate([[0.0], np.cumsum(np.diff(grid) * 0.5 * (1 / tempo[1:] + 1 / tempo[:-1]))])
    on = np.interp(ev.onset, grid, warp)
    end = np.interp(ev.onset + ev.dur, grid, warp)
    return _with(ev, on, end - on, float(warp[-1]))


def swing(ev: Events, ratio: float = 2.0, pair_ql: float = 1.0) -> Events:
    """Swing the eighth-note pairs: each ``pair_ql`` span's first half lasts ``ratio`` times its second.

    Positions inside each pair are mapped piecewise linearly: the first half ``[0, pair/2]`` to
    ``[0, pair * ratio / (1 + ratio)]``, the second half to the rest. Notes on the pair's start
    (the beats) do not move; the off-beat eighth moves late (``ratio=2``: to the last triplet
    third, hornpipe swing), the notes before it lengthen and the notes after it shorten.
    ``ratio=1`` is straight. Meant for simple meters (hornpipes in 4/4 or 2/4, ``pair_ql=1``).
    """
    if ratio <= 0:
        raise GenerationError(f"swing ratio must be positive, got {ratio}")
    split = pair_ql * ratio / (1.0 + ratio)

    def warp(t: np.ndarray) -> np.ndarray:
        base = np.floor(t / pair_ql + 1e-9) * pair_ql
        pos = np.clip(t - base, 0.0, pair_ql)
        half = pair_ql / 2
        return base + np.where(pos <= half, pos * split / half, split + (pos - half) * (pair_ql - split) / half)

    on = warp(ev.onset)
    end = warp(ev.onset + ev.dur)
    return _with(ev, on, np.maximum(end - on, 1e-3))


def velocity_curve(ev: Events, shape: str = "arch", depth: float = 12.0, seed: int = 0) -> Events:
    """Add a dynamics curve (MIDI velocity units, ``+-depth``) over the piece to ``vel_offset``.

    Shapes: "crescendo", "decrescendo", "arch" (swell to the middle), "phrase" (a swell every
    four bars), "random" (a smooth random curve with periods of about four bars, from ``seed``).
    """
    x = ev.onset / max(ev.length_ql, 1e-6)
    if shape == "crescendo":
        c = 2 * x - 1
    elif shape == "decrescendo":
        c = 1 - 2 * x
    elif shape == "arch":
        c = 1 - 2 * np.abs(2 * x - 1)
    elif shape == "phrase":
        c = -np.cos(2 * np.pi * ev.onset / (4 * ev.bar_ql))
    elif shape == "random":
        c = np.clip(_smooth_curve(np.random.default_rng(seed), ev.onset, 4 * ev.bar_ql), -1, 1)
    else:
        raise GenerationError(f"unknown velocity curve {shape!r}")
    base = ev.vel_offset if ev.vel_offset is not None else np.zeros(len(ev.onset), np.float32)
    return _with(ev, ev.onset.copy(), ev.dur.copy(), vel_offset=base + depth * c)


def jitter(ev: Events, sd_ql: float = 0.02, voice_lag_ql: float = 0.01, seed: int = 0) -> Events:
    """Humanised onsets: each note moves by a normal ``sd_ql``, each voice by its own lag.

    Per-voice lags (normal, ``voice_lag_ql``) make parts of an ensemble sit slightly apart, as
    players do. Onsets are clipped at 0 and notes keep their end inside the piece.
    """
    rng = np.random.default_rng(seed)
    lag = rng.normal(0.0, voice_lag_ql, size=max(ev.n_voices, int(ev.voice.max()) + 1))
    on = np.clip(ev.onset + rng.normal(0.0, sd_ql, size=len(ev.onset)) + lag[ev.voice], 0.0, None)
    dur = np.maximum(np.minimum(ev.dur, ev.length_ql - on), 1e-3)
    return _with(ev, on, dur)
