"""The catalog's storage layer, the bottom of the stack: it imports no other tunescope package.

Database schema and access (``models``, ``db``, ``repo``), audio decoding and ingestion
(``audio``, ``ingest``), the content-addressed audio store and the vector indexes (``vectors``).
"""
