"""The root error of the ``generation`` package."""


class GenerationError(Exception):
    """A score, renderer or generator that cannot produce what was asked; the message says why."""
