"""``Frame``: one decoded image with its capture time, as every source yields it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Frame:
    """A BGR ``uint8`` image of shape (H, W, 3) and the UTC time it was captured."""

    image: NDArray[np.uint8]
    timestamp: datetime
    index: int
    source: str

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"frame image must be uint8 of shape (H, W, 3), got {self.image.dtype} {self.image.shape}"
            )
        if self.timestamp.tzinfo is None:
            raise ValueError("frame timestamp must be timezone-aware (UTC)")

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
