"""Render variety for encoder v2: other engines, arrangements, performances and accents.

Encoder v1 trained on one renderer (tinysoundfont), pieces played as written, and our own
metrical accents (+16 velocity on a downbeat). On music rendered by other tools it lost metre
(a jig scored 0.0 nDCG@10 on a hidden set) and kept only what survives any rendition (mode,
triple metre). This module draws, per render, what a different player or tool would change:

- **engine**: FluidSynth (its own interpolation, reverb and chorus) beside tinysoundfont;
- **arrangement**: a melody with block chords, Alberti bass, oom-pah, strummed guitar or a
  drone, doubled in octaves, or polyphony reduced for piano, organ or harpsichord (so style,
  era and form are heard apart from the ensemble that plays them);
- **performance**: rubato, swing (hornpipes), dynamics curves, humanised timing;
- **accent**: how much the downbeat is stressed, from none to ours (metre must be heard from
  durations and repetition, not only from our accents).

``mode="train"`` draws all of that; ``mode="heldout"`` is the one combination training never
sees, our own held-out check: FluidSynth with the held-out soundfont, deadpan (no accents, no
performance), every piece on a piano (a melody alone, polyphony reduced) — a score played by a
notation program, the way the hidden evaluation's folk melodies were.

Every draw comes from its own ``random.Random``, so a catalog built without variety renders
exactly as before.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from generation.symbolic.arrange import ACCOMPANIMENT_PROGRAMS, accompany, double_octaves, keyboard_reduction
from generation.symbolic.ensembles import MELODY_ENSEMBLES, POLY_ENSEMBLES, Ensemble, programs_for
from generation.symbolic.fluid import FluidSettings
from generation.symbolic.perform import jitter, rubato, swing, velocity_curve

if TYPE_CHECKING:
    from generation.symbolic.render import Events

VARIETY_MODES = ("train", "heldout")
#: Accompaniment styles drawn for a melody, with weights.
ACCOMPANIMENT_STYLES = {"block": 2.0, "alberti": 1.0, "oompah": 1.5, "strum": 1.5, "drone": 1.0}
_ACC_NAMES = {"block": "piano chords", "alberti": "piano", "oompah": "accordion and bass",
              "strum": "guitar", "drone": "organ drone"}
KEYBOARDS = ("solo piano", "church organ", "harpsichord")


@dataclass(frozen=True)
class Variety:
    """What one render changes (recorded in the metadata row as ``variety``).

    Attributes:
        engine: "tinysoundfont" or "fluidsynth".
        fluid: FluidSynth's settings when the engine is FluidSynth.
        arrangement: "as written", an accompaniment style of :data:`ACCOMPANIMENT_STYLES`,
            "octaves", or "keyboard reduction".
        keyboard: the keyboard ensemble of a reduction (a name in ``POLY_ENSEMBLES``).
        performance: the performance transforms applied, in order.
        accent: the render's downbeat accent (``RenderSpec.accent``).
        seed: for the transforms' own draws.
    """

    engine: str = "tinysoundfont"
    fluid: FluidSettings | None = None
    arrangement: str = "as written"
    keyboard: str | None = None
    performance: tuple[str, ...] = field(default=())
    accent: float = 16.0
    seed: int = 0

    def describe(self) -> dict[str, object]:
        """A JSON-able record for the metadata row."""
        return {"engine": self.engine, "arrangement": self.arrangement, "keyboard": self.keyboard,
                "performance": list(self.performance), "accent": round(self.accent, 1)}


def _fluid_settings(rng: random.Random) -> FluidSettings:
    return FluidSettings(
        interpolation=rng.choice(["linear", "4th", "7th", "4th"]),
        reverb=rng.random() < 0.6, reverb_room=rng.uniform(0.2, 0.9),
        reverb_damping=rng.uniform(0.0, 0.7), reverb_level=rng.uniform(0.2, 0.8),
        chorus=rng.random() < 0.3, chorus_level=rng.uniform(0.5, 3.0),
        chorus_speed=rng.uniform(0.1, 1.0), chorus_depth_ms=rng.uniform(2.0, 12.0),
        gain=rng.uniform(0.2, 0.6),
    )


def plan_variety(rng: random.Random, mode: str, *, polyphonic: bool, tune_type: str | None) -> Variety:
    """Draw a render's variety.

    Args:
        rng: the render's own generator (not the catalog's: old catalogs stay unchanged).
        mode: "train" or "heldout" (see the module docstring).
        polyphonic: the score has more than one part (a reduction instead of an accompaniment).
        tune_type: hornpipes are swung more often than not.
    """
    if mode == "heldout":
        return Variety(engine="fluidsynth", fluid=FluidSettings(reverb=True, reverb_level=0.3),
                       arrangement="keyboard reduction" if polyphonic else "as written",
                       keyboard="solo piano", accent=0.0, seed=rng.randrange(2**31))
    if mode != "train":
        raise ValueError(f"variety mode must be one of {VARIETY_MODES}, got {mode!r}")
    engine = "fluidsynth" if rng.random() < 0.4 else "tinysoundfont"
    arrangement, keyboard = "as written", None
    if polyphonic and rng.random() < 0.35:
        arrangement, keyboard = "keyboard reduction", rng.choice(KEYBOARDS)
    elif not polyphonic:
        u = rng.random()
        if u < 0.35:
            names = list(ACCOMPANIMENT_STYLES)
            arrangement = rng.choices(names, weights=[ACCOMPANIMENT_STYLES[n] for n in names])[0]
        elif u < 0.5:
            arrangement = "octaves"
    perf = []
    if rng.random() < (0.7 if tune_type == "hornpipe" else 0.0):
        perf.append("swing")
    if rng.random() < 0.35:
        perf.append("rubato")
    if rng.random() < 0.5:
        perf.append("dynamics")
    if rng.random() < 0.5:
        perf.append("jitter")
    u = rng.random()
    accent = 16.0 if u < 0.35 else (0.0 if u < 0.6 else rng.uniform(0.0, 12.0))
    return Variety(engine=engine, fluid=_fluid_settings(rng) if engine == "fluidsynth" else None,
                   arrangement=arrangement, keyboard=keyboard, performance=tuple(perf),
                   accent=accent, seed=rng.randrange(2**31))


def keyboard_ensemble(variety: Variety, ens: Ensemble) -> Ensemble:
    """The ensemble that actually plays: the keyboard of a reduction, else ``ens``."""
    if variety.arrangement == "keyboard reduction" and variety.keyboard:
        return POLY_ENSEMBLES[variety.keyboard]
    return ens


def apply_variety(ev: Events, variety: Variety, key: tuple[int, bool] | None = None) -> Events:
    """The events as this variety plays them: arrangement first, then performance."""
    s = variety.seed
    if variety.arrangement == "keyboard reduction":
        ev = keyboard_reduction(ev)
    elif variety.arrangement == "octaves":
        ev = double_octaves(ev, (0,), -12 if random.Random(s).random() < 0.6 else 12)
    elif variety.arrangement in ACCOMPANIMENT_STYLES:
        ev = accompany(ev, variety.arrangement, seed=s, key=key)
    r = random.Random(s + 1)
    for p in variety.performance:
        if p == "swing":
            ev = swing(ev, ratio=r.uniform(1.5, 2.2))
        elif p == "rubato":
            ev = rubato(ev, depth=r.uniform(0.03, 0.1), seed=s)
        elif p == "dynamics":
            ev = velocity_curve(ev, r.choice(["arch", "crescendo", "decrescendo", "phrase", "random"]),
                                depth=r.uniform(6.0, 16.0), seed=s)
        elif p == "jitter":
            ev = jitter(ev, sd_ql=r.uniform(0.005, 0.03), voice_lag_ql=0.01, seed=s)
    return ev


def extend_programs(programs: tuple[tuple[int, ...], ...], octaves: tuple[tuple[int, ...], ...],
                    variety: Variety, n_voices: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Programs for the voices an accompaniment added (the lead's stay as they were)."""
    if variety.arrangement not in ACCOMPANIMENT_STYLES:
        return programs, octaves
    acc = ACCOMPANIMENT_PROGRAMS[variety.arrangement]
    extra = n_voices - len(programs)
    new_p = tuple((acc[min(i, len(acc) - 1)],) for i in range(extra))
    return programs + new_p, octaves + tuple((0,) for _ in range(extra))


def accompaniment_instruments(variety: Variety) -> list[str]:
    """Instrument names an accompaniment adds to the row (empty for other arrangements)."""
    name = _ACC_NAMES.get(variety.arrangement)
    return [name] if name else []


def prepare(mode: str | None, key: str, ev: Events, ens: Ensemble,
            tune_type: str | None) -> tuple[Events, Ensemble, tuple, tuple, Variety | None]:
    """One render's events, ensemble and programs under ``mode`` (None: as v1 rendered them).

    Args:
        mode: None, "train" or "heldout".
        key: seeds this render's own generator (``"variety:{seed}:{piece}:{render}"``).
        ev: the piece's events.
        ens: the ensemble drawn for the render.
        tune_type: the piece's tune type.

    Returns:
        The events as played, the ensemble that plays them, its programs and octave shifts, and
        the variety drawn (None without a mode; :class:`Variety`'s defaults are v1's render).
    """
    if mode is None:
        progs, octs = programs_for(ens, ev.n_voices)
        return ev, ens, progs, octs, None
    v = plan_variety(random.Random(key), mode, polyphonic=ev.n_voices > 1, tune_type=tune_type)
    ens = keyboard_ensemble(v, ens)
    if mode == "heldout" and ev.n_voices == 1:
        ens = MELODY_ENSEMBLES["solo piano"]
    played = apply_variety(ev, v)
    progs, octs = programs_for(ens, ev.n_voices if v.arrangement != "keyboard reduction" else 1)
    progs, octs = extend_programs(progs, octs, v, played.n_voices)
    return played, ens, progs, octs, v
