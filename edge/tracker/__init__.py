"""Multi-object tracking: one object seen in many frames becomes one track.

``ByteTracker(TrackerConfig())`` implements :class:`edge.interfaces.Tracker`
(``update(detections, timestamp) -> Detections`` with ``tracker_id`` set, ``reset()``).
"""

from edge.tracker.bytetrack import ByteTracker

__all__ = ["ByteTracker"]
