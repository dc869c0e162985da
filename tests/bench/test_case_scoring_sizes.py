"""Recall by the labelled object's size: where the misses are (bench.case_scoring.TypeScore.by_size)."""

from __future__ import annotations

from bench.case_scoring import Label, PhotoResult, Report, score, size_band, size_bands
from streetwatch.events import ViolationType

SIGN = ViolationType.illegal_signboard


def test_bands_are_the_square_root_of_the_area() -> None:
    assert size_bands() == ["<32", "32-64", "64-96", "96-160", ">=160"]
    assert size_band((0, 0, 31, 31)) == "<32"
    assert size_band((0, 0, 32, 32)) == "32-64"
    assert size_band((0, 0, 200, 20)) == "32-64"  # a wide, low sign: 63 px
    assert size_band((10, 10, 170, 170)) == ">=160"


def test_found_and_missed_objects_are_counted_in_their_band() -> None:
    small, small_missed = (0, 0, 40, 40), (100, 0, 140, 40)
    large = (0, 100, 300, 300)
    ignore = (400, 0, 410, 10)
    photo = PhotoResult(
        "signboards/a.jpg",
        [
            Label("signboard", small),
            Label("signboard", small_missed),
            Label("signboard", large),
            Label("signboard", ignore, ignore=True),
        ],
        [Report(SIGN, small), Report(SIGN, large)],
    )
    bands = score([photo])[SIGN].by_size()
    assert bands == {
        "32-64": {"labelled": 2, "found": 1, "recall": 0.5},
        ">=160": {"labelled": 1, "found": 1, "recall": 1.0},
    }  # the ignore box counts nowhere; empty bands are left out
