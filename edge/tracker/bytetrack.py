"""A ByteTrack-style multi-object tracker (Zhang et al., 2022), small enough to read in one sitting.

Why not a library: the maintained ByteTrack packages do not fit the edge's
dependency budget (numpy, opencv, onnxruntime, paho-mqtt, pydantic):
``supervision``/``trackers`` pull matplotlib and scipy, ``boxmot`` pulls torch,
``norfair`` needs scipy and filterpy, and the ``bytetracker`` packages need
``lap``/scipy and are no longer maintained.

Per update, with every track's box predicted to the frame time:

1. boxes scoring >= ``high_thresh`` are matched (IoU >= ``match_iou``) to the
   confirmed tracks, including lost ones;
2. boxes scoring in [``low_thresh``, ``high_thresh``) are matched to the
   confirmed tracks still unmatched that were seen on the previous update, with
   ByteTrack's stricter IoU (>= 0.5): this is what keeps a partly occluded
   object's track alive through low-confidence frames;
3. tentative tracks (seen once) are matched to the high boxes left; a tentative
   track that misses is dropped, one that matches is confirmed and gets its id;
4. high boxes still unmatched with score >= ``new_track_thresh`` start tentative
   tracks;
5. tracks unseen for more than ``lost_timeout_s`` (frame time, not frame count,
   so replays at any rate behave alike) are removed.

Association is class-aware: a box only continues a track of the same detector
and class. Only detections assigned to a confirmed track are returned.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge.config import TrackerConfig
from edge.detections import Detections
from edge.geometry import iou_matrix
from edge.tracker.kalman import BoxFilter
from edge.tracker.matching import greedy_match

log = logging.getLogger(__name__)

#: ByteTrack's second-round threshold: a low-score box must overlap its track well.
_LOW_ROUND_MIN_IOU = 0.5

#: Track ids are unique for the life of the process, across tracker instances and resets.
_next_track_id = itertools.count(1)


@dataclass
class _Track:
    filter: BoxFilter
    label: tuple[int, int]  # (detector index, class id): association never crosses it
    updated_at: datetime  # time of the filter state
    last_seen: datetime
    track_id: int | None = None  # set on confirmation
    missed_last: bool = False  # not matched on the previous update

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None


class ByteTracker:
    """ByteTrack-style tracker implementing :class:`edge.interfaces.Tracker`.

    >>> from datetime import datetime, timedelta, timezone
    >>> tracker = ByteTracker(TrackerConfig())
    >>> box = Detections(xyxy=np.array([[10, 10, 50, 90]]), confidence=np.array([0.9]),
    ...                  class_id=np.array([0]), class_name=np.array(["person"]))
    >>> t0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
    >>> len(tracker.update(box, t0))  # a new object is tentative on its first frame
    0
    >>> out = tracker.update(box, t0 + timedelta(seconds=0.1))
    >>> out.tracker_id is not None and len(out) == 1
    True
    """

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._tracks: list[_Track] = []
        self._last_time: datetime | None = None

    def reset(self) -> None:
        """Forget every track (ids already handed out are never reused)."""
        self._tracks = []
        self._last_time = None

    @property
    def active_track_count(self) -> int:
        """Confirmed tracks currently kept (seen or lost but not yet timed out)."""
        return sum(1 for t in self._tracks if t.confirmed)

    def update(self, detections: Detections, timestamp: datetime) -> Detections:
        if timestamp.tzinfo is None:
            raise ValueError("tracker timestamps must be timezone-aware (UTC)")
        if self._last_time is not None and timestamp < self._last_time:
            log.warning(
                "tracker: frame time went backwards (%s after %s); starting over",
                timestamp.isoformat(),
                self._last_time.isoformat(),
            )
            self.reset()
        self._last_time = timestamp
        cfg = self.config
        # A track unseen longer than the timeout is gone before matching, not after: after a gap in
        # the frames (a stalled stream, the next photo of a replay) it must not capture a new object.
        self._tracks = [
            t for t in self._tracks if (timestamp - t.last_seen).total_seconds() <= cfg.lost_timeout_s
        ]

        for track in self._tracks:
            dt = (timestamp - track.updated_at).total_seconds()
            track.filter.predict(dt, freeze_height_rate=track.missed_last)
            track.updated_at = timestamp

        scores = detections.confidence
        labels = list(zip(detections.detector_index.tolist(), detections.class_id.tolist(), strict=True))
        high = np.flatnonzero(scores >= cfg.high_thresh)
        low = np.flatnonzero((scores >= cfg.low_thresh) & (scores < cfg.high_thresh))
        assigned: dict[int, _Track] = {}  # detection row -> track

        confirmed = [t for t in self._tracks if t.confirmed]
        tentative = [t for t in self._tracks if not t.confirmed]

        # Round 1: confident boxes against every confirmed track, lost ones included.
        left_tracks, left_high = self._associate(confirmed, high, detections, labels, cfg.match_iou, assigned)
        # Round 2: weak boxes against confirmed tracks that were being followed until now.
        recent = [t for t in left_tracks if not t.missed_last]
        self._associate(recent, low, detections, labels, max(cfg.match_iou, _LOW_ROUND_MIN_IOU), assigned)
        # Round 3: tentative tracks against the confident boxes left; a miss drops them.
        _, left_high = self._associate(tentative, left_high, detections, labels, cfg.match_iou, assigned)

        matched = {id(t) for t in assigned.values()}
        survivors: list[_Track] = []
        for track in self._tracks:
            if id(track) in matched:
                track.last_seen = timestamp
                track.missed_last = False
                if track.track_id is None:
                    track.track_id = next(_next_track_id)
                survivors.append(track)
            elif track.confirmed and (timestamp - track.last_seen).total_seconds() <= cfg.lost_timeout_s:
                track.missed_last = True
                survivors.append(track)
        for row in left_high:
            if scores[row] >= cfg.new_track_thresh:
                survivors.append(
                    _Track(
                        filter=BoxFilter.start(detections.xyxy[row]),
                        label=labels[row],
                        updated_at=timestamp,
                        last_seen=timestamp,
                    )
                )
        self._tracks = survivors

        rows = np.array(sorted(assigned), dtype=np.int64)
        ids = np.array([assigned[int(r)].track_id for r in rows], dtype=np.int64)
        return detections[rows].with_tracker_ids(ids)

    @staticmethod
    def _associate(
        tracks: list[_Track],
        rows: np.ndarray,
        detections: Detections,
        labels: list[tuple[int, int]],
        min_iou: float,
        assigned: dict[int, _Track],
    ) -> tuple[list[_Track], np.ndarray]:
        """Greedy IoU matching of ``tracks`` to detection ``rows``; records matches, returns the leftovers."""
        if not tracks or len(rows) == 0:
            return tracks, rows
        predicted = np.stack([t.filter.xyxy for t in tracks])
        iou = iou_matrix(predicted, detections.xyxy[rows])
        track_labels = np.array([t.label for t in tracks], dtype=np.int64).reshape(-1, 2)
        row_labels = np.array([labels[int(r)] for r in rows], dtype=np.int64).reshape(-1, 2)
        same_label = (track_labels[:, None, :] == row_labels[None, :, :]).all(axis=2)
        iou = np.where(same_label, iou, 0.0)  # class-aware: never continue another class's track
        pairs, left_t, left_r = greedy_match(iou, min_iou)
        for ti, ri in pairs:
            row = int(rows[ri])
            tracks[ti].filter.update(detections.xyxy[row])
            assigned[row] = tracks[ti]
        return [tracks[i] for i in left_t], rows[np.array(left_r, dtype=np.int64)]
