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


class ConversationNotFoundError(CatalogError):
    """A conversation id the catalog does not hold (never created, or a typo)."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} not found")
        self.conversation_id = conversation_id


class ConversationConflictError(CatalogError):
    """Two messages raced on one conversation: the later one must be sent again.

    Raised instead of silently merging, because each turn steers from the state the previous
    turn left; applying two turns to the same old state would drop one of them.
    """
