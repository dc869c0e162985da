"""Cleaning teacher (pseudo-label) boxes before they join a source's own labels."""

from __future__ import annotations

from training.datasets.records import LabeledBox
from training.pseudo_clean import clean_pseudo_boxes
from training.pseudo_label import PseudoBox as Teacher  # what the YOLOX teacher returns


def test_a_truck_needs_a_higher_score_than_a_car() -> None:
    weak_truck, weak_car = Teacher("truck", 0.6, 0, 0, 50, 50), Teacher("car", 0.6, 100, 0, 150, 50)
    kept, dropped = clean_pseudo_boxes([weak_truck, weak_car], [])
    assert kept == [weak_car]
    assert dropped == {"below_class_min_score": 1}


def test_a_teacher_box_mostly_inside_a_labelled_bin_is_the_bin() -> None:
    bin_box = LabeledBox("garbage_bin", 10, 10, 60, 90)
    bin_as_truck = Teacher("truck", 0.9, 12, 20, 62, 88)  # ~96% of it inside the bin
    kept, dropped = clean_pseudo_boxes([bin_as_truck], [bin_box])
    assert kept == [] and dropped == {"inside_a_source_box": 1}


def test_a_real_truck_carrying_a_labelled_pile_keeps_its_box() -> None:
    pile = LabeledBox("garbage", 120, 40, 180, 80)  # the pile is inside the truck, not the other way
    truck = Teacher("truck", 0.9, 100, 20, 300, 140)
    kept, dropped = clean_pseudo_boxes([truck], [pile])
    assert kept == [truck] and not dropped
