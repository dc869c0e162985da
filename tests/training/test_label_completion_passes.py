"""training.label_completion.passes: answers to rows, agreement of two passes, the final completion."""

from __future__ import annotations

import pytest

from training.label_completion.passes import Row, agreement, final, parse_answers

INDEX: dict[str, list[object]] = {
    "V0A": ["vehicles/a.jpg", "truck", [0, 1], [[0, 0, 100, 100, "R", 1.0], [200, 0, 210, 10, "D", 0.2]]],
    "G0A": ["garbage/b.jpg", "signboard", [], []],
}
#: A pile task's cell: one detector proposal and the photo's source labels, named L0..L2 on the sheet.
PILE_INDEX: dict[str, list[object]] = {
    "G1A": [
        "garbage/c.jpg",
        "garbage",
        [0],
        [[300, 300, 400, 400, "D", 0.3]],
        [["overflow", 0, 0, 100, 100], ["garbage_bin", 100, 0, 200, 100], ["garbage", 0, 200, 90, 260]],
    ],
}


def test_answers_become_rows_with_small_added_boxes_as_ignore() -> None:
    lines = ["V0A: acc 0; acc 1; ignp 0; add 300 300 400 340", "G0A: add:truck 0 0 64 64; not 5 5 50 50", ""]
    rows = parse_answers(INDEX, lines)
    assert Row("vehicles/a.jpg", "truck", (0.0, 0.0, 100.0, 100.0), "added") in rows
    assert Row("vehicles/a.jpg", "truck", (200.0, 0.0, 210.0, 10.0), "ignore") in rows  # 10 x 10 px
    assert Row("vehicles/a.jpg", "truck", (300.0, 300.0, 400.0, 340.0), "added") in rows
    assert Row("garbage/b.jpg", "truck", (0.0, 0.0, 64.0, 64.0), "added") in rows
    assert Row("garbage/b.jpg", "signboard", (5.0, 5.0, 50.0, 50.0), "not_a_signboard") in rows
    assert len(rows) == 6


def test_a_pile_task_names_source_labels_by_number_and_boxes_overflowing_bins_as_overflow() -> None:
    rows = parse_answers(PILE_INDEX, ["G1A: notl 0; notl 2; acc:overflow 0; add 120 110 200 180"])
    assert rows == sorted(
        [
            Row("garbage/c.jpg", "overflow", (0.0, 0.0, 100.0, 100.0), "not_a_overflow"),
            Row("garbage/c.jpg", "garbage", (0.0, 200.0, 90.0, 260.0), "not_a_garbage"),
            Row("garbage/c.jpg", "overflow", (300.0, 300.0, 400.0, 400.0), "added"),
            Row("garbage/c.jpg", "garbage", (120.0, 110.0, 200.0, 180.0), "added"),
        ],
        key=lambda r: r.csv(),
    )
    with pytest.raises(ValueError, match="no source label L3"):
        parse_answers(PILE_INDEX, ["G1A: notl 3"])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["V0A: -"], "not answered: G0A"),
        (["V0A: -", "G0A: -", "V0A: acc 0"], "answered twice"),
        (["V0A: keep 0", "G0A: -"], "unknown step"),
    ],
)
def test_bad_answers_are_refused(lines: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_answers(INDEX, lines)


def _row(box: tuple[float, float, float, float], kind: str = "added", photo: str = "vehicles/a.jpg") -> Row:
    return Row(photo, "truck", box, kind)


def test_agreement_matches_boxes_one_to_one_and_counts_each_disagreement() -> None:
    first = [_row((0, 0, 100, 100)), _row((200, 0, 300, 100), "ignore"), _row((400, 0, 500, 100))]
    second = [_row((5, 0, 100, 100)), _row((200, 0, 300, 100)), _row((0, 300, 50, 350))]
    result = agreement(first, second)
    counts = {"pass1": 3, "pass2": 3, "matched": 2, "same_kind": 1, "kind_differs": 1, "class_differs": 0}
    assert result["total"] == {**counts, "only_pass1": 1, "only_pass2": 1}
    assert result["agreement_rate"] == 0.25  # 1 agreed of 4 distinct boxes
    assert len(result["disagreements"]) == 3  # type: ignore[arg-type]


def test_final_keeps_agreed_boxes_and_lets_a_resolution_replace_duplicates() -> None:
    first = [_row((0, 0, 100, 100)), _row((4, 0, 100, 96)), _row((200, 0, 300, 100), "ignore")]
    second = [_row((2, 0, 100, 100)), _row((6, 0, 100, 98)), _row((200, 0, 300, 100))]
    resolutions = [
        {"photo": "vehicles/a.jpg", "class": "truck", "final_box": "0 0 100 100", "final_kind": "added"},
        {"photo": "vehicles/a.jpg", "class": "truck", "final_box": "200 0 300 100", "final_kind": "ignore"},
        {"photo": "vehicles/a.jpg", "class": "truck", "final_box": "", "final_kind": ""},  # settled: nothing
        {
            "photo": "vehicles/a.jpg",
            "class": "truck",
            "final_box": "0 0 100 100",
            "final_kind": "not_a_truck",
        },
    ]
    rows = final(first, second, resolutions)
    assert rows == sorted(
        [_row((0, 0, 100, 100)), _row((200, 0, 300, 100), "ignore"), _row((0, 0, 100, 100), "not_a_truck")],
        key=lambda r: r.csv(),
    )


def _pile(cls: str, box: tuple[float, float, float, float], kind: str = "added") -> Row:
    return Row("garbage/c.jpg", cls, box, kind)


def test_a_pile_boxed_as_garbage_once_and_as_overflow_once_is_agreed_as_the_bench_scores_both_alike() -> None:
    first = [_pile("garbage", (0, 0, 100, 100)), _pile("garbage", (300, 0, 400, 100))]
    second = [_pile("overflow", (4, 0, 100, 100)), _pile("signboard", (300, 0, 400, 100))]
    result = agreement(first, second)
    assert result["total"]["matched"] == 1  # type: ignore[index]
    assert result["total"]["class_differs"] == 1  # type: ignore[index]
    # A sign is not a pile: the second pair is two disagreements, not one.
    assert result["total"]["only_pass1"] == result["total"]["only_pass2"] == 1  # type: ignore[index]
    settled = {"photo": "garbage/c.jpg", "class": "overflow", "final_box": "0 0 100 100"}
    settled["final_kind"] = "added"
    # The agreed pile (pass 1's class and box) is replaced by the resolution of the same pile.
    assert final(first, second, [settled]) == [_pile("overflow", (0, 0, 100, 100))]
