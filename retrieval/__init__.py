"""Music retrieval: encoders, catalog embedding, search, the diffusion prior, evaluation.

Of the project's packages it depends on :mod:`index` only; :mod:`generation` and :mod:`api` build on it.
"""
