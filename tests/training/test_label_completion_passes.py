"""training.label_completion.passes: answers to rows, agreement of two passes, the final completion."""

from __future__ import annotations

import pytest

from training.label_completion.passes import Row, agreement, final, parse_answers

INDEX: dict[str, list[object]] = {
    "V0A": ["vehicles/a.jpg", "truck", [0, 1], [[0, 0, 100, 100, "R", 1.0], [200, 0, 210, 10, "D", 0.2]]],
    "G0A": ["garbage/b.jpg", "signboard", [], []],
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
    counts = {"pass1": 3, "pass2": 3, "matched": 2, "same_kind": 1, "kind_differs": 1}
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
