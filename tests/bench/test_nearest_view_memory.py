"""bench.nearest_view_memory: a truck's nearest view costs at most one more frame per open track."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from bench.nearest_view_memory import DEFAULT_CONFIG, bench_config, main, peak
from bench.tiled_cost import FRAMES
from edge.config import load_config


def test_views_cost_frames_while_their_tracks_are_open(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trucks", "4", "--frames", "24", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    base, views = result["peak_frames_held"]["baseline"], result["peak_frames_held"]["views"]
    assert base >= 4  # each open truck's best frame (its first, where it scored highest)
    assert base < views <= 2 * base  # plus the nearer frames, some shared by several trucks
    assert 1 < result["views_vs_baseline"] <= 2


def test_nothing_is_held_once_every_track_has_ended() -> None:
    image = cv2.imread(str(min(FRAMES.glob("*.jpg"))))
    assert image is not None
    config = bench_config(load_config(DEFAULT_CONFIG), with_views=True)
    recorder = peak(config, [np.asarray(image, dtype=np.uint8).copy() for _ in range(24)], trucks=4)
    assert recorder.peak_frames > 4  # views were kept on the way
    assert recorder.held() == (0, 0)  # the run's end ended every track: best frames and views let go
