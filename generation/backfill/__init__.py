"""Backfill: generate tracks where the catalog answers a query weakly, and keep the good ones.

``worker.py`` runs the job queue (claim, generate, store atomically, complete); ``novelty.py``
holds the novelty gate (melodic n-gram index over the corpus, embedding-similarity bar).
Package ``__init__`` files import nothing heavy.
"""
