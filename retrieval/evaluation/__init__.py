"""Evaluation in one place: metrics, the shared query sets, and the reports of ``eval-encoder``
(:mod:`~retrieval.evaluation.encoder_report`) and ``eval-prior``
(:mod:`~retrieval.evaluation.prior_report`, :mod:`~retrieval.evaluation.sweep`).

The CLI commands parse options, build the encoder and prior, call these and print.
"""
