"""The root error of the ``index`` package; ``api`` maps it to HTTP status codes in one place."""


class CatalogError(Exception):
    """Anything the catalog, its audio store or its indexes refuse to do."""


class DecodeError(CatalogError):
    """An audio file that cannot be decoded or fails validation; the message is the reason."""


class IndexFileError(CatalogError):
    """A saved vector index that must not be served: unreadable, damaged or inconsistent.

    Never fatal: the database is the source of truth, so whoever meets this rebuilds the index
    from it. ``reason`` is the short form (``"checksum mismatch"``) that ``index status`` shows.
    """

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"saved index {path}: {reason}")
        self.path = path
        self.reason = reason
