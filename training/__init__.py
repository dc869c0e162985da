"""Datasets, training, evaluation, export and the model registry (needs the ``train`` extra)."""
