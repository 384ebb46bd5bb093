"""Catalog schema revisions, oldest first (``0001_initial`` creates ``index/models.py``)."""
