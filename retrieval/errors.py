"""The errors of the ``retrieval`` package, all under one root the API maps to responses."""


class RetrievalError(Exception):
    """A query, encoder or model that cannot do what was asked; the message says why."""


class WeightsNotFoundError(RetrievalError):
    """Model weights are missing from the local path the user gave (nothing is downloaded)."""


class InvalidQueryError(RetrievalError):
    """A query that cannot be answered as asked (bad k, empty examples...)."""


class TrackNotFoundError(RetrievalError):
    """A track id that the catalog (or this encoder's index) does not hold."""

    def __init__(self, track_id: int) -> None:
        super().__init__(f"track {track_id} not found")
        self.track_id = track_id
