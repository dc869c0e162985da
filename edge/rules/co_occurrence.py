"""Co-occurrence: a detection counts only when the rule's other objects are seen next to it.

An umbrella or a table on a pavement is not street vending; an umbrella with a person beside it
and goods laid out is. ``RuleConfig.requires`` lists what must be near, each entry met by at least
one detection of its classes in the same frame.
"""

from __future__ import annotations

import numpy as np

from edge.config import CoOccurrence
from edge.detections import Detections
from edge.rules.state import BoxT


def co_occurs(need: CoOccurrence, box: BoxT, detections: Detections) -> bool:
    """Whether a detection of ``need.classes`` (score >= ``need.min_score``) lies near ``box``.

    Near: it overlaps ``box`` grown by ``need.near`` times its width on the left and right and its
    height above and below.

    >>> import numpy as np
    >>> people = Detections(xyxy=np.array([[230, 100, 260, 200]]), confidence=np.array([0.8]),
    ...                     class_id=np.array([0]), class_name=np.array(["person"]))
    >>> need = CoOccurrence(classes=["person"], near=0.5)
    >>> beside, away = (100.0, 100.0, 200.0, 200.0), (0.0, 100.0, 100.0, 200.0)
    >>> co_occurs(need, beside, people), co_occurs(need, away, people)
    (True, False)
    """
    if not len(detections):
        return False
    rows = np.isin(detections.class_name, need.classes) & (detections.confidence >= need.min_score)
    if not rows.any():
        return False
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * need.near, (y2 - y1) * need.near
    other = detections.xyxy[rows]
    overlaps = (
        (other[:, 0] < x2 + dx) & (other[:, 2] > x1 - dx) & (other[:, 1] < y2 + dy) & (other[:, 3] > y1 - dy)
    )
    return bool(overlaps.any())
