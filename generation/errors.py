"""The root error of the ``generation`` package."""


class GenerationError(Exception):
    """A score, renderer or generator that cannot produce what was asked; the message says why."""


class GeneratorUnavailable(GenerationError):
    """A generator whose code cannot be imported: a missing extra, or a backend not built yet."""


class GeneratorWeightsNotFound(GenerationError):
    """A generator's weights are missing from the local path given (nothing is downloaded)."""
