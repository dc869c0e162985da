"""Which detector class raises which violation type (the ``class_map`` of a device config)."""

from __future__ import annotations

from collections.abc import Sequence

from edge.config import ClassMapping


class ClassMap:
    """Looks up the mapping of a detection; a per-detector entry wins over a detector-agnostic one.

    >>> from streetwatch.events import ViolationType
    >>> m = ClassMap([
    ...     ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck, candidate=True),
    ...     ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck, detector=1),
    ... ])
    >>> m.lookup("truck", 0).candidate, m.lookup("truck", 1).candidate, m.lookup("car", 0)
    (True, False, None)
    """

    def __init__(self, mappings: Sequence[ClassMapping]) -> None:
        self._by_detector: dict[tuple[str, int], ClassMapping] = {}
        self._any_detector: dict[str, ClassMapping] = {}
        for m in mappings:
            if m.detector is None:
                self._any_detector[m.detector_class] = m
            else:
                self._by_detector[(m.detector_class, m.detector)] = m

    def lookup(self, class_name: str, detector_index: int) -> ClassMapping | None:
        found = self._by_detector.get((class_name, detector_index))
        return found if found is not None else self._any_detector.get(class_name)
