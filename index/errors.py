"""The root error of the ``index`` package; ``api`` maps it to HTTP status codes in one place."""


class CatalogError(Exception):
    """Anything the catalog, its audio store or its indexes refuse to do."""


class DecodeError(CatalogError):
    """An audio file that cannot be decoded or fails validation; the message is the reason."""
