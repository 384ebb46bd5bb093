"""The vector index: one FAISS index per encoder id, whose ids are track ids.

The catalog database is the source of truth; an index on disk is a cache of its ``embeddings``
rows for one encoder. The package is split by concern:

- :mod:`.factory` -- the factory rule (:func:`choose_factory`), :class:`IndexConfig`, GPU choice;
- :mod:`.faiss_index` -- :class:`VectorIndex`, the FAISS wrapper (tombstones, search, GPU);
- :mod:`.manifest` -- the index file + manifest pair on disk and its atomic swap;
- :mod:`.sync` -- bringing a saved index in line with the database (``VectorIndex.open``).

Everything callers used from the former single module is re-exported here, so
``from index.vectors import VectorIndex, db_watermark`` keeps working.
"""

from index.vectors.factory import IndexConfig, choose_factory, gpu_available
from index.vectors.faiss_index import REBUILD_FRACTION, VectorIndex
from index.vectors.manifest import MANIFEST_VERSION, Manifest, Watermark, _safe_name, persist
from index.vectors.sync import db_watermark, iter_embeddings, load_embeddings

__all__ = [
    "MANIFEST_VERSION",
    "REBUILD_FRACTION",
    "IndexConfig",
    "Manifest",
    "VectorIndex",
    "Watermark",
    "_safe_name",
    "choose_factory",
    "db_watermark",
    "gpu_available",
    "iter_embeddings",
    "load_embeddings",
    "persist",
]
