"""Data access per aggregate: the one place SQL about tracks (later jobs, ...) is written.

Callers above ``index`` (the HTTP app, retrieval) ask for tracks through these functions
instead of building queries, so a schema change touches this package only.
"""

from index.repo.tracks import (
    add_embedding,
    count_tracks,
    delete_track,
    get_track,
    load_tracks,
)

__all__ = ["add_embedding", "count_tracks", "delete_track", "get_track", "load_tracks"]
