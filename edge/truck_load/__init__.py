"""The ``unsealed_truck`` second stage: a load classifier on each confirmed truck's crop."""

from edge.truck_load.classifier import LoadClassifier, LoadVerdict
from edge.truck_load.stage import LoadCounts, LoadStage

__all__ = ["LoadClassifier", "LoadCounts", "LoadStage", "LoadVerdict"]
