"""Evaluation in one place: metrics, the shared query sets, the eval-encoder and eval-prior reports.

The reports: ``eval-encoder``'s (:mod:`~retrieval.evaluation.encoder_report`) and
``eval-prior``'s (:mod:`~retrieval.evaluation.prior_report`, :mod:`~retrieval.evaluation.sweep`).

The CLI commands parse options, build the encoder and prior, call these and print.
"""
