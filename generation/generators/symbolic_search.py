"""The symbolic generator's search space: one candidate's parameters and the distribution over them.

:class:`SearchDistribution` is the cross-entropy method's state. Round 0 is broad: temperature
around 1, the ensemble and tempo class left to the model's own prediction from the embedding,
a register in -5..+6 semitones, every prior sample and every soundfont equally likely. Each
refit keeps Gaussians over the continuous parameters (temperature, where in the tempo class's
bpm range, transposition) and smoothed categoricals over the discrete ones, fitted on the
round's elites.

Why the soundfont and the prior sample can be searched (both off by default, see below): the encoder hears the
instrument's timbre before the form, and the catalog's renders are spread over every training
soundfont. With one soundfont a fill for "a waltz" can only sound like the waltzes that
soundfont played; with the soundfont as a dimension the search finds the timbre the encoder
hears the request in. The prior's samples differ the same way (for "a jig" some sit on bagpipe
jigs, some on fiddle ones), so the rows whose candidates score best condition more of the next
round instead of a uniform share.

Measured (``tunescope eval-backfill --no-baselines``, seed 0, 2026-12-02): searching both the
soundfont (over TimGM6mb, FluidR3 and CsoundGM) and the prior row lowered the win rate on hole
queries from 0.71 to 0.43, so both are off by default: the generator renders with TimGM6mb and
draws the prior row uniformly (``SymbolicGenerator(soundfonts=..., search_targets=True)`` turns
them on). Apart, each costs wins too (soundfont alone 0.50, prior row alone 0.57). A likely
reason: the encoder's score of a render moves with the soundfont more than with the music, so
the search spends its rounds on timbre. See docs/generators.md.

Smoothing: the ensemble and tempo categoricals spread their pseudo-counts over the values the
elites used (the model's own predictions define that set); the soundfont and target
categoricals spread them over their whole support, so a value no elite used this round keeps a
small chance of coming back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Pseudo-counts per value in a refitted categorical (over 4-6 elites: no single round decides).
ALPHA = 0.5


@dataclass(frozen=True)
class SearchParams:
    """One candidate's point in the search space."""

    seed: int
    temperature: float
    target: int  # row of the targets that conditions it (-1: none)
    ensemble: str | None  # None: the model's prediction
    tempo_class: str | None
    tempo_jitter: float  # where in the tempo class's bpm range, 0..1
    transpose: int
    soundfont: str


class SearchDistribution:
    """The search distribution over :class:`SearchParams` (round 0 broad, then refitted).

    Args:
        forced: attributes the request fixes (never drawn).
        n_targets: rows of the condition (0: no targets).
        soundfonts: the soundfonts a candidate may be rendered with (at least one).
        refit_targets: refit the prior row's categorical from the elites (False: every row
            stays equally likely, drawn as the generator did before the row was searched).
    """

    def __init__(self, forced: Mapping[str, str], n_targets: int, soundfonts: Sequence[str],
                 refit_targets: bool = False) -> None:
        if not soundfonts:
            raise ValueError("the search needs at least one soundfont")
        self.forced = dict(forced)
        self.n_targets = n_targets
        self.refit_targets = refit_targets
        self.soundfont_names = tuple(soundfonts)
        self.temp = (1.0, 0.15)
        self.jitter = (0.5, 0.3)
        self.transpose = (0.5, 3.5)
        self.ensembles: dict[str, float] | None = None  # None: the model predicts
        self.tempi: dict[str, float] | None = None
        self.soundfonts = {s: 1.0 / len(soundfonts) for s in self.soundfont_names}
        self.targets: dict[int, float] | None = None  # None: uniform over the rows

    def draw(self, seed: int) -> SearchParams:
        """One parameter point from ``seed`` (the same seed gives the same point)."""
        rng = np.random.default_rng(seed + 7919)
        ens = tempo = None
        if self.ensembles and "ensemble" not in self.forced:
            ens = _choice(rng, self.ensembles)
        if self.tempi and "tempo_class" not in self.forced:
            tempo = _choice(rng, self.tempi)
        return SearchParams(
            seed=seed, temperature=float(np.clip(rng.normal(*self.temp), 0.6, 1.4)),
            target=(int(_choice(rng, self.targets)) if self.targets else int(rng.integers(self.n_targets)))
            if self.n_targets else -1,
            ensemble=ens, tempo_class=tempo,
            tempo_jitter=float(np.clip(rng.normal(*self.jitter), 0.0, 1.0)),
            transpose=int(np.clip(round(rng.normal(*self.transpose)), -5, 6)),
            soundfont=str(_choice(rng, self.soundfonts)) if len(self.soundfonts) > 1 else self.soundfont_names[0])

    def refit(self, elite: Sequence[SearchParams], ensembles: Sequence[str],
              tempi: Sequence[str]) -> SearchDistribution:
        """The cross-entropy-method step from the elites' parameters and what they were rendered with.

        Args:
            elite: the elites' parameter points.
            ensembles: the ensemble each elite was rendered with (the model's prediction
                where the parameter left it open).
            tempi: the tempo class each elite was rendered with (likewise).
        """
        new = SearchDistribution(self.forced, self.n_targets, self.soundfont_names, self.refit_targets)
        temps = np.array([p.temperature for p in elite])
        new.temp = (float(temps.mean()), max(float(temps.std()), 0.05))
        jit = np.array([p.tempo_jitter for p in elite])
        new.jitter = (float(jit.mean()), max(float(jit.std()), 0.1))
        tr = np.array([p.transpose for p in elite], float)
        new.transpose = (float(tr.mean()), max(float(tr.std()), 1.0))
        new.ensembles = smoothed(list(ensembles))
        new.tempi = smoothed(list(tempi))
        new.soundfonts = smoothed([p.soundfont for p in elite], support=self.soundfont_names)
        if self.n_targets and self.refit_targets:
            new.targets = smoothed([p.target for p in elite], support=range(self.n_targets))
        return new


def _choice(rng: np.random.Generator, probs: Mapping[object, float]) -> object:
    names = list(probs)
    p = np.array([probs[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def smoothed(values: Sequence[object], alpha: float = ALPHA, support: Sequence[object] | range | None = None
             ) -> dict:
    """Frequencies of ``values`` with ``alpha`` pseudo-counts per name of ``support``.

    ``support`` None: the values seen (a value no one used cannot come back).
    """
    names = sorted(set(values)) if support is None else list(support)
    counts = np.array([list(values).count(n) + alpha for n in names], float)
    return dict(zip(names, (counts / counts.sum()).tolist(), strict=True))
