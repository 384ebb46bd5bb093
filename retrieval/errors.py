"""The root error of the ``retrieval`` package."""


class RetrievalError(Exception):
    """A query, encoder or model that cannot do what was asked; the message says why."""


class WeightsNotFoundError(RetrievalError):
    """Model weights are missing from the local path the user gave (nothing is downloaded)."""
