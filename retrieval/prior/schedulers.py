"""The diffusers schedulers the prior trains and samples with, built from its config.

Training always uses DDPM; sampling may use DDIM, DPM-Solver++, Euler or UniPC, each built on
the training noise schedule so that the schedule always matches the weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrieval.errors import RetrievalError
from retrieval.prior.model import PriorConfig

if TYPE_CHECKING:
    from diffusers import DDPMScheduler, SchedulerMixin

#: Sampling schedulers (all deterministic given the initial noise).
SCHEDULERS: dict[str, str] = {
    "ddim": "DDIMScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}
_OVERRIDES: dict[str, dict[str, Any]] = {
    "ddim": {"set_alpha_to_one": True, "eta": 0.0},
    "dpm": {"algorithm_type": "dpmsolver++", "solver_order": 2, "final_sigmas_type": "zero"},
    "euler": {},
    "unipc": {"solver_order": 2},
}
#: Samplers whose step is a fixed affine map of (model output, sample): run from precomputed
#: coefficients (:meth:`PriorPipeline._affine_plan`), without the scheduler object.
_AFFINE_SCHEDULERS = frozenset({"ddim"})


def training_scheduler(config: PriorConfig) -> DDPMScheduler:
    """The DDPM scheduler the prior is trained with (its config seeds every sampler).

    Args:
        config: the prior's noise schedule (timesteps, beta schedule, prediction type).
    """
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=config.num_train_timesteps,
                         beta_schedule=config.beta_schedule,
                         prediction_type=config.prediction_type, clip_sample=False)


def make_scheduler(name: str, config: PriorConfig) -> SchedulerMixin:
    """A sampling scheduler by name, on the training noise schedule.

    ``timestep_spacing="trailing"`` starts sampling at the last training timestep (pure noise):
    with 10-25 steps the default "leading" spacing would start from a partly clean sample
    that the network never saw at that noise level.

    Args:
        name: a key of :data:`SCHEDULERS`.
        config: the prior's config (its training noise schedule).

    Raises:
        RetrievalError: an unknown scheduler name.
    """
    import diffusers

    if name not in SCHEDULERS:
        raise RetrievalError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")
    cls = getattr(diffusers, SCHEDULERS[name])
    base = dict(training_scheduler(config).config)
    base.update(timestep_spacing="trailing", clip_sample=False, thresholding=False)
    overrides = {k: v for k, v in _OVERRIDES[name].items() if k != "eta"}
    return cls.from_config(base, **overrides)
