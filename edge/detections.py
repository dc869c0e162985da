"""``Detections``: the one type that carries boxes between edge stages.

Parallel numpy arrays, validated on construction (errors name the shapes), in
the spirit of ``supervision.Detections``. Boxes are ``xyxy`` in pixels of the
original frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]
StrArray = NDArray[np.str_]


@dataclass(frozen=True)
class Detections:
    """N detections as parallel arrays.

    >>> d = Detections(
    ...     xyxy=np.array([[0, 0, 10, 20]], dtype=np.float32),
    ...     confidence=np.array([0.9], dtype=np.float32),
    ...     class_id=np.array([7]),
    ...     class_name=np.array(["truck"]),
    ... )
    >>> len(d), float(d.area[0])
    (1, 200.0)
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    class_name: StrArray
    #: Index of the detector (in the pipeline's list) that produced each row.
    detector_index: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Set by a tracker; ``None`` before tracking.
    tracker_id: IntArray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
        n = xyxy.shape[0]
        detector_index = np.asarray(self.detector_index, dtype=np.int64)
        if detector_index.size == 0:
            detector_index = np.zeros(n, dtype=np.int64)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=np.float32))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int64))
        object.__setattr__(self, "class_name", np.asarray(self.class_name, dtype=np.str_))
        object.__setattr__(self, "detector_index", detector_index)
        if self.tracker_id is not None:
            object.__setattr__(self, "tracker_id", np.asarray(self.tracker_id, dtype=np.int64))
        for name in ("confidence", "class_id", "class_name", "detector_index", "tracker_id"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(
                    f"{name} must have shape ({n},) to match xyxy {xyxy.shape}, got {value.shape}"
                )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: NDArray[np.bool_] | NDArray[np.int64] | slice | Sequence[int]) -> Detections:
        """Select rows by boolean mask, index array or slice; always returns ``Detections``."""
        return Detections(
            xyxy=self.xyxy[index].reshape(-1, 4),
            confidence=self.confidence[index].reshape(-1),
            class_id=self.class_id[index].reshape(-1),
            class_name=self.class_name[index].reshape(-1),
            detector_index=self.detector_index[index].reshape(-1),
            tracker_id=None if self.tracker_id is None else self.tracker_id[index].reshape(-1),
        )

    @property
    def area(self) -> FloatArray:
        w = np.clip(self.xyxy[:, 2] - self.xyxy[:, 0], 0, None)
        h = np.clip(self.xyxy[:, 3] - self.xyxy[:, 1], 0, None)
        return (w * h).astype(np.float32)

    def with_tracker_ids(self, tracker_id: IntArray) -> Detections:
        return Detections(
            xyxy=self.xyxy,
            confidence=self.confidence,
            class_id=self.class_id,
            class_name=self.class_name,
            detector_index=self.detector_index,
            tracker_id=tracker_id,
        )

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), dtype=np.float32),
            confidence=np.zeros(0, dtype=np.float32),
            class_id=np.zeros(0, dtype=np.int64),
            class_name=np.zeros(0, dtype=np.str_),
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate detections (e.g. from several detectors on one frame)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        tracked = all(p.tracker_id is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            class_name=np.concatenate([p.class_name for p in parts]),
            detector_index=np.concatenate([p.detector_index for p in parts]),
            tracker_id=np.concatenate([p.tracker_id for p in parts if p.tracker_id is not None])
            if tracked
            else None,
        )
