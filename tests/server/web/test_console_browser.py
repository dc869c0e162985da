"""The dispatcher console in a real headless Chromium, against a real server.

The server is the real thing: SQLite, the ingest worker reading a real Mosquitto, uvicorn over
HTTP; cases arrive as a box sends them (evidence and events over MQTT). The tests type and
click as a dispatcher would and then check the database and the training export.

Set STREETWATCH_CONSOLE_SCREENSHOTS=<folder> to save the queue and case screenshots the README
shows (docs/console-queue.png, docs/console-case.png).
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from server.auth import hash_token
from server.cases.service import SYSTEM_COVERAGE, transition
from server.db.models import ApiToken, Case, CaseReview, CaseTransition, CaseViewer, Event, User
from streetwatch.cli import main
from tests.server.factories import offset
from tests.server.web.console import Console
from tests.server.web.stack import Sighting, Stack, wait_for
from training.datasets.taxonomy import load_taxonomy

pytestmark = [pytest.mark.browser, pytest.mark.broker]

TRUCK_PHOTO = "vehicles_vnv_1333_jpg.jpg"  # 640 x 640: a tanker in the middle, a truck far up left
TANKER = (200.0, 145.0, 390.0, 335.0)  # what the box reported
MISSED_TRUCK = (50.0, 60.0, 140.0, 165.0)  # the truck the detector did not box
NOW = datetime.now(timezone.utc)

#: In queue order (most urgent first, then newest): the first five are triaged by keyboard.
GARBAGE, SIGNBOARD = "garbage_overflow", "illegal_signboard"
SIGHTINGS = {
    # Seen from a passing van: the event's own box is the latest frame's, 60 px on from the evidence.
    "truck": Sighting(
        TRUCK_PHOTO,
        "unsealed_truck",
        "truck",
        TANKER,
        0,
        candidate=True,
        moved_to=(260.0, 145.0, 450.0, 335.0),
        # The box's load classifier was not sure: the truck is a candidate for review.
        attributes={
            "load": "unsure",
            "load_score": 0.46,
            "load_model": "truck-load 1.1.0",
            "load_likeliest": "covered",
        },
    ),
    "bin-shadow": Sighting("garbage_atanu_000535.jpg", GARBAGE, "garbage", (60, 150, 500, 560), 300),
    "bin-1": Sighting("garbage_atanu_000272.jpg", GARBAGE, "overflow", (120, 200, 420, 520), 600),
    "bin-2": Sighting("garbage_atanu_000678.jpg", GARBAGE, "overflow", (200, 220, 460, 480), 900),
    "bin-3": Sighting("garbage_atanu_000785.jpg", GARBAGE, "overflow", (150, 180, 480, 500), 1200),
    # Confirmed 22 m before the sign, 5 m to the right; the box placed the sign itself (event schema 4).
    "sign": Sighting(
        "signboards_vdl_IMG_0048.jpg",
        SIGNBOARD,
        "a_frame_sign",
        (150, 300, 500, 800),
        1500,
        placed_ahead_m=22.0,
        placed_right_m=5.0,
    ),
}
#: Keys pressed on the first five cases, and the decision each must record. Confirming the truck
#: also asks its load: 3 is "can't tell" (uncovered, partly covered, can't tell).
TRIAGE = [
    (("c", "3"), "confirm", None),
    (("x", "1"), "reject", "not_a_violation"),
    (("c",), "confirm", None),
    (("c",), "confirm", None),
    (("x", "4"), "reject", "bad_image"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("console"))
    try:
        # Seen in the order listed, a minute apart: the queue's urgent order (priority, then the
        # case due soonest) is then the order of SIGHTINGS, the truck (due in 2 h) first.
        seen = [NOW - timedelta(minutes=minutes) for minutes in range(len(SIGHTINGS), 0, -1)]
        running.send_cases(*SIGHTINGS.values(), at=seen, what="the sightings to become cases", timeout=30)
        yield running
    finally:
        running.close()


@pytest.fixture
def console(browser: Any, stack: Stack) -> Iterator[Console]:
    opened = Console(browser, stack)
    yield opened
    opened.close()


def utc(moment: datetime) -> str:
    """A stored time as ISO 8601 in UTC (SQLite hands it back without its zone)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def case_ids(stack: Stack) -> dict[str, int]:
    """Case id per sighting name (cases were opened in the order the sightings were sent)."""
    with stack.sessions() as session:
        ids = session.scalars(select(Case.id).order_by(Case.id)).all()
    return dict(zip(SIGHTINGS, ids, strict=False))


def transitions(stack: Stack, case_id: int) -> list[CaseTransition]:
    with stack.sessions() as session:
        rows = session.scalars(
            select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id)
        ).all()
        session.expunge_all()
        return list(rows)


def screenshot(console: Console, name: str) -> None:
    folder = os.environ.get("STREETWATCH_CONSOLE_SCREENSHOTS")
    if not folder:
        return
    path = Path(folder) / name
    console.page.screenshot(path=str(path))
    from PIL import Image  # only here: 256 colours keep the README's images small and their colours true

    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def to_screen(console: Console, x: float, y: float, frame: tuple[int, int]) -> tuple[float, float]:
    """Page coordinates of frame pixel (x, y) on the drawn frame."""
    box = console.page.locator("#boxes").bounding_box()
    assert box is not None
    return box["x"] + x / frame[0] * box["width"], box["y"] + y / frame[1] * box["height"]


def open_case(console: Console, case_id: int) -> None:
    """Go to a case by its link (the URL keeps the case), as a shared link would."""
    console.page.evaluate("id => { location.hash = '#/queue?case=' + id; }", case_id)
    console.wait_for_case(case_id)


def only_device(page: Any, device: str, shown: int) -> None:
    """Type ``device`` (an id or a prefix with *) into the queue's device filter, and wait until the
    list shows its ``shown`` cases."""
    page.fill("#filter-device_id", device)
    page.keyboard.press("Tab")
    page.wait_for_selector(f"#queue-total >> text={shown} of {shown} shown")


def ask_merge(console: Console, into: int) -> None:
    """m, the other case's number, Enter: what a reviewer types to merge the open case."""
    console.press("m")
    console.page.wait_for_selector(".dialog input")
    console.page.keyboard.type(str(into))
    console.press("Enter")


def drag(console: Console, start: tuple[float, float], end: tuple[float, float]) -> None:
    mouse = console.page.mouse
    mouse.move(*start)
    mouse.down()
    mouse.move(*end, steps=6)
    mouse.up()


def test_a_reviewer_triages_by_keyboard_corrects_boxes_dispatches_and_sees_cases_arrive(
    browser: Any, console: Console, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = case_ids(stack)
    console.sign_in("rita")
    page = console.page
    assert console.case_id() == ids["truck"], "the most urgent, newest case opens first"
    page.wait_for_function("() => [...document.querySelectorAll('#queue img.thumb')].every(i => i.complete)")
    screenshot(console, "console-queue.png")

    # Five cases, keyboard only: every decision moves on to the next case by itself.
    decided: dict[int, tuple[str, str | None]] = {}
    started = time.monotonic()
    for keys, action, reason in TRIAGE:
        current = console.case_id()
        console.press(*keys)
        page.wait_for_function(
            "id => !document.querySelector('#case-title').textContent.startsWith('#' + id + ' ')", arg=current
        )
        decided[current] = (action, reason)
    rate = len(TRIAGE) / (time.monotonic() - started) * 60
    with capsys.disabled():
        print(f"\nkeyboard triage: {len(TRIAGE)} cases at {rate:.0f} cases/minute")
    assert set(decided) == {ids[n] for n in ("truck", "bin-shadow", "bin-1", "bin-2", "bin-3")}
    assert console.case_id() == ids["sign"]
    page.wait_for_selector("#counts >> text=To review 1")  # the counts follow the decisions
    # Every type's count reads on its line at 1366 px (the line wraps when it must), and
    # the overdue chip is red only when something is overdue.
    types_row = "#counts .count-row:nth-child(2)"
    assert page.eval_on_selector(types_row, "r => r.scrollWidth <= r.clientWidth"), page.inner_text(types_row)
    assert page.locator(f"{types_row} .chip").count() == 3
    overdue = page.locator("#counts .chip", has_text="Overdue")
    red = "overdue" in (overdue.get_attribute("class") or "").split()
    assert red == (overdue.locator("b").inner_text() != "0")
    # ...and so does the foot: the decided rows stay listed, the bulk action counts what still matches.
    assert page.inner_text("#queue-total") == "6 of 6 shown, 5 dealt with"
    assert page.inner_text("#bulk-filter") == "act on the 1 matching…"
    # k steps back to the case just decided (a wrong key is undone where it was pressed); j goes on
    # to the next case still to do.
    console.press("k")
    console.wait_for_case(ids["bin-3"])
    console.press("j")
    console.wait_for_case(ids["sign"])

    # The database holds each decision as rita's, with the reason key's reject reason.
    for case_id, (action, reason) in decided.items():
        last = transitions(stack, case_id)[-1]
        assert (last.actor, last.action, last.reason_code) == ("rita", action, reason), case_id

    # Correct the tanker's box and draw the truck the detector missed, on the clean frame.
    page.click(f"#case-{ids['truck']}")
    console.wait_for_case(ids["truck"])
    # Under the picture, the time it was taken: its evidence frame's, 2 s before the event's frame.
    with stack.sessions() as session:
        tanker = session.scalars(select(Event).where(Event.case_id == ids["truck"])).one()
        taken, observed = tanker.evidence_captured_at, tanker.observed_at
    assert taken is not None and taken != observed
    fmt = "async iso => (await import('./js/util.js')).when(iso)"
    shown = page.inner_text("#frame-caption")
    assert page.evaluate(fmt, utc(taken)) in shown and page.evaluate(fmt, utc(observed)) not in shown
    console.press("e")
    page.wait_for_selector("#frame.editing")
    frame = (640, 640)
    # The detector's box is drawn where the evidence frame shows the tanker: its corner is grabbed there.
    drag(console, to_screen(console, TANKER[2], TANKER[3], frame), to_screen(console, 370, 318, frame))
    drag(console, to_screen(console, *MISSED_TRUCK[:2], frame), to_screen(console, *MISSED_TRUCK[2:], frame))
    page.wait_for_selector(".dialog input[type=search]")
    page.keyboard.type("truck")
    console.press("Enter")  # picks the class
    page.wait_for_selector(".dialog", state="detached")
    console.press("Enter")  # saves the boxes
    page.wait_for_selector("#case-message >> text=Boxes saved (1 added)")
    with stack.sessions() as session:
        review = session.get(CaseReview, ids["truck"])
        assert review is not None and review.updated_by == "rita"
        assert review.box == pytest.approx([200, 145, 370, 318], abs=3)
        ((added),) = review.added_boxes
        assert added["class_name"] == "truck"
        assert added["box"] == pytest.approx(list(MISSED_TRUCK), abs=3)
    page.wait_for_selector("#boxes .box.reviewed")
    page.wait_for_selector("#boxes .box.added")
    screenshot(console, "console-case.png")

    # The admin adds two teams on the Users page and deactivates one, from the keyboard; from then
    # on the dispatch picker offers the active teams only: d, then the team's number.
    admin = Console(browser, stack)
    try:
        admin.sign_in("ada")
        admin.page.evaluate("() => { location.hash = '#/users'; }")
        for name, covers in (("north-grid", "Wards 1-4"), ("night-crew", "22:00-06:00")):
            admin.page.focus("#team-form input[name=name]")
            admin.page.keyboard.type(name)
            admin.press("Tab")
            admin.page.keyboard.type(covers)
            admin.press("Enter")
            admin.page.wait_for_selector(f"#teams-table >> text={covers}")
        admin.page.focus("#teams-table tr[data-team=night-crew] >> text=Deactivate")
        admin.press("Enter")
        admin.page.wait_for_selector("#teams-table tr[data-team=night-crew] >> text=inactive")
        assert admin.foreign_requests() == []
        assert admin.errors == []
    finally:
        admin.close()
    page.click(f"#case-{ids['bin-1']}")
    console.wait_for_case(ids["bin-1"])
    console.press("d")
    page.wait_for_selector(".dialog [role=listbox] >> text=north-grid")
    offered = page.locator(".dialog [role=listbox] button").evaluate_all("bs => bs.map(b => b.dataset.value)")
    assert offered == ["north-grid"]  # night-crew is inactive
    console.press("1")
    wait_for(lambda: transitions(stack, ids["bin-1"])[-1].action == "dispatch", 10, "the dispatch")
    last = transitions(stack, ids["bin-1"])[-1]
    assert (last.to_state, last.team, last.actor) == ("dispatched", "north-grid", "rita")

    # A new case arrives over MQTT while rita works: it shows up without a reload, and her
    # place (the selected case, the rows she has) stays as it was.
    page.click(f"#case-{ids['sign']}")
    console.wait_for_case(ids["sign"])
    page.evaluate("id => { window.keptRow = document.getElementById('case-' + id); }", ids["sign"])
    [fresh] = stack.send_cases(
        Sighting("garbage_atanu_000895.jpg", "garbage_overflow", "overflow", (100, 120, 500, 500), 2400),
        what="the new case",
    )
    page.wait_for_selector(f"#case-{fresh}", timeout=10_000)
    assert console.case_id() == ids["sign"]
    assert page.get_attribute(f"#case-{ids['sign']}", "aria-selected") == "true"
    assert page.evaluate("id => window.keptRow === document.getElementById('case-' + id)", ids["sign"])
    assert page.is_visible(f"#case-{fresh}.fresh")
    # Marked "new" until opened (the fading highlight is gone if she looked away), and the flash
    # saying it arrived leaves the open case's title and actions readable.
    assert page.inner_text(f"#case-{fresh} .badge.new") == "unopened"
    page.wait_for_selector("#flash >> text=1 new case arrived.")
    flash, title = page.locator("#flash").bounding_box(), page.locator("#case-title").bounding_box()
    assert flash is not None and title is not None
    assert flash["y"] > title["y"] + title["height"], (flash, title)
    page.click(f"#case-{fresh}")
    console.wait_for_case(fresh)
    assert page.locator(f"#case-{fresh} .badge.new").count() == 0
    assert page.locator("#queue .badge.new").count() == 0

    assert console.foreign_requests() == []
    assert console.errors == []

    # Confirmed with corrected and added boxes: the training export carries both.
    out = tmp_path / "reviews"
    args = ["dataset", "from-reviews", "--server", stack.url, "--token", stack.tokens["vic"]]
    assert main([*args, "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    truck = load_taxonomy().class_names().index("truck")
    rows = [
        [float(v) for v in line.split()]
        for label in (out / "labels" / "train").glob("*.txt")
        for line in label.read_text().splitlines()
        if line.strip()
    ]

    def yolo(box: tuple[float, ...]) -> list[float]:
        x1, y1, x2, y2 = (v / 640 for v in box)
        return [truck, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]

    corrected, missed = yolo((200, 145, 370, 318)), yolo(MISSED_TRUCK)
    assert any(r == pytest.approx(corrected, abs=0.01) for r in rows), rows
    assert any(r == pytest.approx(missed, abs=0.01) for r in rows), rows


def test_someone_elses_move_is_a_clear_message_not_an_override(browser: Any, stack: Stack) -> None:
    ids = case_ids(stack)
    target = ids["sign"]
    viewing = Console(browser, stack)
    try:
        # This console does not hear the live stream, so it still shows the case as it was.
        viewing.page.route("**/api/v1/live/cases*", lambda route: route.abort())
        viewing.page.goto(f"{stack.url}/console/#/queue?case={target}")
        viewing.page.fill("#signin-user", "rita")
        viewing.page.fill("#signin-password", "correct-horse-7")
        viewing.page.press("#signin-password", "Enter")
        viewing.wait_for_case(target)
        state = viewing.page.inner_text("#case-state")
        stack.act(target, action="confirm")
        viewing.press("x", "1")
        message = viewing.page.wait_for_selector(".message.conflict")
        assert message is not None
        text = message.inner_text()
        assert "Someone else moved this case: it is Confirmed now (you saw New)" in text, text
        assert state == "New"
        assert [t.actor for t in transitions(stack, target)][-1] == "ada"  # nothing overridden
        assert viewing.page.inner_text("#case-state") == "Confirmed"  # the page shows where it is now
    finally:
        viewing.close()

    # With the live stream on: the case changes while the reason picker is open. The page redraws
    # it behind the picker, and the reason key still acts on what the reviewer saw: a 409.
    [other] = stack.send_cases(
        Sighting("garbage_atanu_001034.jpg", GARBAGE, "overflow", (80, 90, 420, 500), 4200),
        what="the case to decide",
    )
    assert other is not None
    live = Console(browser, stack)
    try:
        live.sign_in("rita")
        open_case(live, other)
        live.press("x")
        live.page.wait_for_selector(".dialog >> text=why?")
        stack.act(other, action="confirm")
        live.page.wait_for_selector("#case-state >> text=Confirmed")  # redrawn behind the picker
        live.press("1")
        message = live.page.wait_for_selector(".message.conflict")
        assert message is not None and "it is Confirmed now (you saw New)" in message.inner_text()
        assert [t.actor for t in transitions(stack, other)][-1] == "ada"
    finally:
        live.close()


def test_confirming_a_dispatched_case_asks_before_taking_it_back(browser: Any, stack: Stack) -> None:
    [case_id] = stack.send_cases(
        Sighting("garbage_atanu_001107.jpg", GARBAGE, "overflow", (60, 60, 400, 460), 5200),
        what="the case to dispatch",
    )
    assert case_id is not None
    stack.act(case_id, action="dispatch", team="north-grid")
    console = Console(browser, stack)
    try:
        console.sign_in("ada")
        open_case(console, case_id)
        page = console.page
        assert "primary" not in (page.get_attribute("#act-confirm", "class") or "")  # not the next step
        console.press("c")
        page.wait_for_selector(f".dialog >> text=Take case #{case_id} back to confirmed?")
        page.click(".dialog button >> text=Cancel")
        assert [t.to_state for t in transitions(stack, case_id)][-1] == "dispatched"  # nothing done
        console.press("c")
        page.wait_for_selector(".dialog >> text=It is dispatched")
        page.click(".dialog button.primary")
        wait_for(lambda: transitions(stack, case_id)[-1].to_state == "confirmed", 10, "the confirm")
        with stack.sessions() as session:
            case = session.get(Case, case_id)
            assert case is not None and case.assigned_team is None  # taken back from the team

        # In bulk too: confirming what the filter shows says it takes dispatched cases back.
        stack.act(case_id, action="dispatch", team="north-grid")
        page.select_option("#filter-state", "dispatched")
        page.wait_for_selector(f"#case-{case_id}")
        page.click("#bulk-filter")
        page.wait_for_selector(".dialog >> text=matching the filter")
        console.press("1")  # confirm
        page.wait_for_selector(".dialog >> text=dispatched or resolved: confirming takes")
        page.click(".dialog button >> text=Cancel")
        assert transitions(stack, case_id)[-1].to_state == "dispatched"
        assert console.errors == []
    finally:
        console.close()


def test_a_viewer_sees_but_cannot_act_and_the_page_fits_a_laptop_and_a_tablet(
    browser: Any, stack: Stack
) -> None:
    for width, height in ((1366, 768), (768, 1024)):
        viewer = Console(browser, stack, width, height)
        try:
            viewer.sign_in("vic")
            page = viewer.page
            assert "Read only" in page.inner_text("#actions")
            shown = viewer.case_id()
            before = len(transitions(stack, shown))
            viewer.press("c", "x", "1", "d")
            page.wait_for_selector("#case-message >> text=Read only: your role is viewer.")
            assert len(transitions(stack, shown)) == before
            assert viewer.errors == []
            # Even a hand-made request with the page's own CSRF value is refused: the role decides.
            status = page.evaluate(
                """async id => {
                    const session = await (await fetch('/api/v1/session')).json();
                    const r = await fetch('/api/v1/cases/' + id + '/actions', {method: 'POST',
                        headers: {'Content-Type': 'application/json',
                                  'X-StreetWatch-CSRF': session.csrf_token},
                        body: JSON.stringify({action: 'confirm'})});
                    return r.status;
                }""",
                shown,
            )
            assert status == 403
            refused = "Failed to load resource: the server responded with a status of 403 (Forbidden)"
            assert viewer.errors == [refused]
            viewer.errors.clear()
            # Readable at this size: nothing wider than the window, the list, the frame and the
            # case's state on screen without scrolling the page.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            for selector in ("#queue .row", "#frame-img", "#case-state", "#signout"):
                box = page.locator(selector).first.bounding_box()
                assert box is not None and box["width"] > 0, selector
                assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, selector
                assert box["y"] < height, selector
            # The annotated frame as the box drew it, and back to the clean one (t).
            assert page.get_attribute("#frame-img", "alt") == "clean frame"
            clean_src = page.get_attribute("#frame-img", "src")
            viewer.press("t")
            page.wait_for_selector("#frame-img[alt='annotated frame']")
            assert page.get_attribute("#frame-img", "src") != clean_src
            viewer.press("t")
            page.wait_for_selector("#frame-img[alt='clean frame']")
            viewer.press("?")
            help_text = page.inner_text("#help")
            assert "confirm" in help_text and "1 not a violation" in help_text and "[object" not in help_text
            viewer.press("Escape")
            page.wait_for_selector("#help", state="detached")
            assert viewer.foreign_requests() == []
            assert viewer.errors == []
        finally:
            viewer.close()


def test_a_case_arriving_above_the_view_leaves_the_list_where_the_dispatcher_is(
    browser: Any, stack: Stack
) -> None:
    # Enough cases for a 520 px window to scroll, however many the tests before this one opened.
    for north_m in (5100.0, 5400.0, 5700.0)[: max(0, 9 - stack.count_cases())]:
        stack.send_cases(
            Sighting("garbage_atanu_000272.jpg", GARBAGE, "overflow", (120, 200, 420, 520), north_m),
            what="a case to scroll past",
        )
    viewer = Console(browser, stack, 1366, 520)  # a short window: the list scrolls
    try:
        viewer.sign_in("vic")
        page = viewer.page
        page.select_option("#filter-state", "all")
        page.wait_for_function("() => document.querySelectorAll('#queue .row').length >= 7")
        page.evaluate("() => { const q = document.getElementById('queue'); q.scrollTop = q.scrollHeight; }")
        last = page.locator("#queue .row").last
        last.click()
        chosen = int(last.get_attribute("data-id") or 0)
        viewer.wait_for_case(chosen)
        where = page.locator(f"#case-{chosen}").bounding_box()
        scrolled = page.evaluate("() => document.getElementById('queue').scrollTop")
        assert where is not None and scrolled > 0

        # Seen two days ago (a box back in signal range): overdue, so the most urgent of the list.
        two_days = datetime.now(timezone.utc) - timedelta(days=2)
        [fresh] = stack.send_cases(
            Sighting("garbage_atanu_001025.jpg", GARBAGE, "overflow", (100, 100, 400, 400), 2700),
            at=[two_days],
            what="the new case",
        )
        page.wait_for_selector(f"#case-{fresh}", state="attached")
        assert page.evaluate("() => document.querySelector('#queue .row').id") == f"case-{fresh}"  # on top
        now = page.locator(f"#case-{chosen}").bounding_box()
        assert now is not None and abs(now["y"] - where["y"]) <= 2, (where, now)
        assert viewer.case_id() == chosen
        # Above the rows in view, it is named on a button over the list; j would never reach it.
        page.wait_for_selector("#new-above >> text=↑ 1 new case above")
        page.click("#new-above")
        page.wait_for_selector("#new-above", state="hidden")
        row, listed = page.locator(f"#case-{fresh}").bounding_box(), page.locator("#queue").bounding_box()
        assert row is not None and listed is not None and row["y"] >= listed["y"] - 1, (row, listed)
        assert viewer.case_id() == chosen  # seen, not opened: the dispatcher decides when

        # At the top of the list too: the open case's row does not slide down under the arrivals.
        page.evaluate("() => { document.getElementById('queue').scrollTop = 0; }")
        third = page.locator("#queue .row").nth(2)
        third.click()
        chosen = int(third.get_attribute("data-id") or 0)
        viewer.wait_for_case(chosen)
        where = page.locator(f"#case-{chosen}").bounding_box()
        [fresh] = stack.send_cases(
            Sighting("garbage_atanu_000678.jpg", GARBAGE, "overflow", (200, 220, 460, 480), 2900),
            at=[two_days - timedelta(hours=1)],
            what="the second new case",
        )
        page.wait_for_selector(f"#case-{fresh}", state="attached")
        now = page.locator(f"#case-{chosen}").bounding_box()
        assert where is not None and now is not None and abs(now["y"] - where["y"]) <= 2, (where, now)
        assert viewer.errors == [] and viewer.foreign_requests() == []
    finally:
        viewer.close()


def test_a_configured_tile_server_draws_tiles_under_the_map(browser: Any, stack: Stack) -> None:
    app = stack.http.config.app
    plain = app.state.settings
    # A "tile server" on the same host: the shipped icon stands in for every tile.
    tiles = f"{stack.url}/console/favicon.svg?tile={{z}}/{{x}}/{{y}}"
    console_settings = plain.console.model_copy(update={"tile_url": tiles, "tile_attribution": "© City GIS"})
    app.state.settings = plain.model_copy(update={"console": console_settings})
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("vic")
        page = viewer.page
        page.wait_for_selector("svg.map image")
        hrefs = page.eval_on_selector_all(
            "svg.map image", "images => images.map(i => i.getAttribute('href'))"
        )
        # Street-level zoom (how close depends on the case and its neighbours on the map).
        pattern = re.compile(re.escape(f"{stack.url}/console/favicon.svg?tile=") + r"(1[5-9])/\d+/\d+$")
        assert hrefs and all(pattern.match(h) for h in hrefs), hrefs
        assert "© City GIS" in page.eval_on_selector("svg.map", "m => m.textContent")
        assert any(pattern.match(url) for url in viewer.requests)
        assert viewer.errors == [] and viewer.foreign_requests() == []
    finally:
        viewer.close()
        app.state.settings = plain


def test_a_case_the_box_placed_sits_at_the_object_and_says_so(console: Console, stack: Stack) -> None:
    ids = case_ids(stack)
    console.sign_in("vic")
    open_case(console, ids["sign"])
    page = console.page
    facts = page.inner_text("#facts")
    lat, lon = offset(1500 + 22, 5.0)  # the sign, not the van 22 m before it
    where = "the object, placed by the box: 22 m ahead of the van, 5 m to its right"
    assert f"{lat:.5f}, {lon:.5f} ({where})" in facts, facts
    assert page.locator("svg.map circle.object").count() == 1
    title = page.eval_on_selector("svg.map circle.object title", "t => t.textContent")
    assert "the object, placed by the box (±6 m)" in title
    assert page.locator("svg.map circle.event").count() == 1  # the camera's fix, apart from it
    legend = page.inner_text("#case-map .map-legend")
    assert "this case" in legend and "camera" in legend and "the object, placed by the box" in legend
    open_case(console, ids["bin-1"])
    assert "(camera fix)" in page.inner_text("#facts")
    assert page.locator("svg.map circle.object").count() == 0
    assert "placed by the box" not in page.inner_text("#case-map .map-legend")  # only what it shows
    assert console.errors == []


def test_times_are_the_dispatchers_own_and_say_which_clock(browser: Any, stack: Stack) -> None:
    # A dispatcher in India: UTC+5:30, a zone whose offset is not whole hours.
    viewer = Console(browser, stack, timezone_id="Asia/Kolkata")
    try:
        ids = case_ids(stack)
        viewer.sign_in("vic")
        open_case(viewer, ids["bin-1"])
        page = viewer.page
        with stack.sessions() as session:
            opened = session.get(Case, ids["bin-1"])
            assert opened is not None
            opened_at = opened.opened_at
        local = datetime.fromisoformat(utc(opened_at)).astimezone(timezone(timedelta(hours=5, minutes=30)))
        assert f"{local:%Y-%m-%d %H:%M:%S} UTC+5:30" in page.inner_text("#facts")
        assert "UTC+5:30" in page.inner_text("#frame-caption")
        headers = page.eval_on_selector_all("#timeline th, #history th", "hs => hs.map(h => h.textContent)")
        assert "Time (UTC+5:30)" in headers and "When (UTC+5:30)" in headers, headers
        # The times in those tables stay on one line, however narrow the pane.
        page.set_viewport_size({"width": 1024, "height": 768})
        lines = page.eval_on_selector_all(
            "td.time",
            """ts => ts.map(t => {
                const text = document.createRange();
                text.selectNodeContents(t);
                return new Set([...text.getClientRects()].map(r => Math.round(r.top))).size;
            })""",
        )
        assert lines and set(lines) == {1}, lines
        assert viewer.errors == []
    finally:
        viewer.close()


def test_a_case_at_the_same_place_as_the_open_one_can_be_clicked_on_its_map(
    browser: Any, stack: Stack
) -> None:
    ids = case_ids(stack)
    # A sign where bin-1's van stood: another type, so its own case, on the very same spot.
    [sign_case] = stack.send_cases(
        Sighting("signboards_vdl_IMG_0048.jpg", SIGNBOARD, "signboard", (150, 300, 500, 800), 600),
        what="the sign's case",
    )
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("vic")
        page = viewer.page
        page.select_option("#filter-state", "all")
        page.wait_for_selector(f"#case-{sign_case}")
        open_case(viewer, ids["bin-1"])
        dot = page.locator("svg.map circle.case").bounding_box()
        assert dot is not None
        x, y = dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2
        on_top = page.evaluate("([x, y]) => document.elementFromPoint(x, y).getAttribute('class')", [x, y])
        assert on_top == "other", on_top
        # ...while the case's own ring is drawn over everything, so it is never hidden.
        drawn = page.eval_on_selector_all("svg.map circle", "cs => cs.map(c => c.getAttribute('class'))")
        assert drawn[-1] == "case" and drawn.count("case") == 1, drawn
        page.mouse.click(x, y)
        viewer.wait_for_case(sign_case)
        assert viewer.errors == []
    finally:
        viewer.close()


def test_other_cases_at_one_place_are_one_dot_that_asks_which(browser: Any, stack: Stack) -> None:
    # Three types at one place: three cases. On the truck's map the other two would be two dots on
    # one spot, of which only the top one could be clicked.
    at = (8600.0, "van-16")
    garbage, sign, truck = stack.send_cases(
        Sighting("garbage_atanu_000272.jpg", GARBAGE, "overflow", (120, 200, 420, 520), *at),
        Sighting("signboards_vdl_IMG_0048.jpg", SIGNBOARD, "signboard", (150, 300, 500, 800), *at),
        Sighting("vehicles_vnv_138_jpg.jpg", "unsealed_truck", "truck", (370, 225, 440, 352), *at, True),
        what="the three cases",
    )
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("vic")
        page = viewer.page
        page.select_option("#filter-state", "all")
        page.wait_for_selector(f"#case-{sign}")
        open_case(viewer, truck)
        stacked = page.locator("svg.map circle.other.stacked")
        assert stacked.count() == 1 and page.text_content("svg.map text.stack-count") == "2"
        title = stacked.locator("title").text_content() or ""
        assert f"case #{garbage} " in title and f"case #{sign} " in title, title
        stacked.click()
        page.wait_for_selector(".dialog >> text=2 at this place")
        labels = page.locator(".dialog .choices button").all_inner_texts()
        second = sign if f"case #{sign} " in labels[1] else garbage
        viewer.press("2")
        viewer.wait_for_case(second)
        assert viewer.errors == []
    finally:
        viewer.close()


def on_case(stack: Stack, username: str, case_id: int) -> bool:
    """Whether the server holds that ``username`` has ``case_id`` open (a console's heartbeat)."""
    with stack.sessions() as session:
        rows = session.scalars(select(CaseViewer).where(CaseViewer.username == username)).all()
        return any(row.case_id == case_id for row in rows)


def test_two_dispatchers_on_one_case_see_each_other_before_both_decide(browser: Any, stack: Stack) -> None:
    shared, other = stack.send_cases(
        *(
            Sighting("garbage_atanu_000272.jpg", GARBAGE, "overflow", (120, 200, 420, 520), north_m, "van-17")
            for north_m in (8900.0, 9200.0)
        ),
        what="the two cases",
    )
    ada, rita = Console(browser, stack), Console(browser, stack)
    try:
        ada.page.clock.install()  # her page's heartbeat, moved on below instead of waited for
        ada.sign_in("ada")
        open_case(ada, shared)
        wait_for(lambda: on_case(stack, "ada", shared), 15, "ada's console to say which case it shows")
        rita.sign_in("rita")
        # Rita's queue names who has the case open before she opens it...
        rita.page.select_option("#filter-state", "all")
        rita.page.wait_for_selector(f"#case-{shared} .badge.viewing >> text=open: ada")
        assert rita.page.locator(f"#case-{other} .badge.viewing").count() == 0
        # ...and the case view says so once she does.
        open_case(rita, shared)
        note = rita.page.wait_for_selector("#case-viewers.viewers")
        assert note is not None and note.inner_text().startswith("ada has this case open too")
        # Ada hears of Rita at her next heartbeat, without reloading the case. (Rita's note may come
        # from the case's own answer before her page has said where it is: wait for that first.)
        wait_for(lambda: on_case(stack, "rita", shared), 15, "rita's console to say which case it shows")
        assert ada.page.locator("#case-viewers.viewers").count() == 0
        ada.page.clock.fast_forward(16_000)
        ada.page.wait_for_selector("#case-viewers.viewers >> text=rita has this case open too")
        # Rita goes to the supervisor's page: she is on no case there. At Ada's next heartbeat the
        # note is gone; it is back when Rita returns to the case. (Each step waits until Rita's
        # page has said where it is, so Ada's heartbeat hears the new answer.)
        rita.page.click("#nav-supervisor")
        wait_for(lambda: not on_case(stack, "rita", shared), 15, "rita's console to leave the case")
        ada.page.clock.fast_forward(16_000)
        ada.page.wait_for_selector("#case-viewers[hidden]", state="attached")
        open_case(rita, shared)
        wait_for(lambda: on_case(stack, "rita", shared), 15, "rita's console to be back on the case")
        ada.page.clock.fast_forward(16_000)
        ada.page.wait_for_selector("#case-viewers.viewers >> text=rita has this case open too")
        # Rita moves on to another case: at Ada's next heartbeat the note is gone.
        open_case(rita, other)
        wait_for(lambda: on_case(stack, "rita", other), 15, "rita's console to move on")
        rita.page.wait_for_selector("#case-viewers[hidden]", state="attached")
        ada.page.clock.fast_forward(16_000)
        ada.page.wait_for_selector("#case-viewers[hidden]", state="attached")
        assert ada.errors == [] and rita.errors == []
    finally:
        ada.close()
        rita.close()


def test_bulk_actions_say_which_of_the_selection_they_fit_and_keep_the_rest_selected(
    browser: Any, stack: Stack
) -> None:
    fresh, rejected = stack.send_cases(
        *(
            Sighting("garbage_atanu_000272.jpg", GARBAGE, "overflow", (120, 200, 420, 520), north_m, "van-12")
            for north_m in (6000.0, 6300.0)
        ),
        what="van-12's cases",
    )
    stack.act(rejected, action="reject")
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("ada")
        page = viewer.page
        page.select_option("#filter-state", "all")
        only_device(page, "van-12", 2)
        for case_id in (fresh, rejected):
            page.check(f"#case-{case_id} input[type=checkbox]")
        # A new case cannot be closed, a rejected one can: the buttons say so before anything is sent.
        assert page.inner_text("#bulk-close") == "Close (1 of 2)"
        assert page.inner_text("#bulk-confirm") == "Confirm (1 of 2)"
        assert page.get_attribute("#bulk-close", "title") == "1 of the 2 selected can be closed"
        page.click("#bulk-close")
        page.wait_for_selector(".dialog >> text=Close 1 case?")
        assert "1 other selected case cannot be closed and stays selected." in page.inner_text(".dialog")
        viewer.press("Enter")
        page.wait_for_selector("#flash >> text=Bulk close: 1 done.")
        wait_for(lambda: transitions(stack, rejected)[-1].to_state == "closed", 10, "the close")
        assert transitions(stack, fresh)[-1].to_state == "new"
        # The case it did not fit is still selected, for the action it does fit.
        page.wait_for_selector("#bulk-target >> text=Bulk on 1 selected:")
        assert page.is_checked(f"#case-{fresh} input[type=checkbox]")
        assert page.get_attribute("#bulk-close", "disabled") is not None
        assert page.inner_text("#bulk-confirm") == "Confirm"
        assert viewer.errors == []
    finally:
        viewer.close()


def test_full_screen_shows_the_frame_large_and_stays_through_t_and_j(console: Console, stack: Stack) -> None:
    console.sign_in("vic")
    page = console.page
    page.select_option("#filter-state", "all")
    page.wait_for_selector("#queue-total")  # the list of every state is in (the foot says Loading… till then)
    page.wait_for_function("() => document.querySelectorAll('#queue .row').length >= 2")
    first = page.locator("#queue .row").first  # j has a case after it, whatever the list holds
    opened = int(first.get_attribute("data-id") or 0)
    first.click()
    console.wait_for_case(opened)
    page.wait_for_function("() => document.getElementById('frame-img').naturalHeight > 0")
    small = page.locator("#frame-img").bounding_box()
    console.press("f")
    page.wait_for_function(
        "() => document.fullscreenElement && document.fullscreenElement.id === 'full-view'"
    )
    page.wait_for_selector("#full-view #frame-img")
    large = page.locator("#frame-img").bounding_box()
    assert small is not None and large is not None and large["height"] > 1.4 * small["height"], (small, large)
    assert page.locator("#frame-elsewhere").count() == 1  # the pane says where the frame went
    alt = page.get_attribute("#frame-img", "alt")
    console.press("t")  # the other frame: still full screen
    page.wait_for_function("alt => document.getElementById('frame-img').alt !== alt", arg=alt)
    assert page.evaluate("() => document.fullscreenElement && document.fullscreenElement.id") == "full-view"
    console.press("j")  # the next case: still full screen, its frame there
    page.wait_for_function(
        "id => !document.querySelector('#case-title').textContent.startsWith('#' + id + ' ')",
        arg=opened,
    )
    assert page.evaluate("() => document.fullscreenElement && document.fullscreenElement.id") == "full-view"
    assert page.locator("#full-view .frame-box").count() == 1
    console.press("f")
    page.wait_for_function("() => !document.fullscreenElement")
    page.wait_for_selector("#full-view .frame-box", state="detached")
    assert page.locator(".case-grid #frame-box").count() == 1
    assert console.errors == []


def test_k_comes_back_to_the_case_just_decided_past_rows_a_colleague_dealt_with(
    browser: Any, stack: Stack
) -> None:
    seen = datetime.now(timezone.utc)
    due = ((30, 7000.0), (20, 7300.0), (10, 7600.0))  # due in this order
    first, middle, last = stack.send_cases(
        *(
            Sighting("garbage_atanu_000272.jpg", GARBAGE, "overflow", (120, 200, 420, 520), north_m, "van-14")
            for _, north_m in due
        ),
        at=[seen - timedelta(minutes=minutes) for minutes, _ in due],
        what="van-14's cases",
    )
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("rita")
        page = viewer.page
        only_device(page, "van-14", 3)
        # A colleague confirms the middle one meanwhile: it stays listed, dealt with.
        stack.act(middle, action="confirm")
        page.wait_for_selector(f"#case-{middle}.done")
        page.click(f"#case-{first}")
        viewer.wait_for_case(first)
        viewer.press("c")  # on to the next case still to do, past the colleague's
        viewer.wait_for_case(last)
        viewer.press("k")  # back to the one just decided, not to the colleague's
        viewer.wait_for_case(first)
        assert viewer.errors == []
    finally:
        viewer.close()


def test_a_signboard_case_map_shows_the_no_sign_zone_it_is_in(
    browser: Any, stack: Stack, tmp_path: Path
) -> None:
    from server.settings import SignSettings
    from tests.server.signs.zone_files import write_zones, zone_feature

    # The sign stands 5 m right of the van's route: a zone along that side of the street.
    corners = [offset(n, e) for n, e in ((1450, 2), (1450, 12), (1600, 12), (1600, 2), (1450, 2))]
    path = write_zones(tmp_path, zone_feature("Old Quarter east side", "no signs over the pavement", corners))
    app = stack.http.config.app
    plain = app.state.settings
    app.state.settings = plain.model_copy(update={"signs": SignSettings(no_sign_zones=str(path))})
    viewer = Console(browser, stack)
    try:
        ids = case_ids(stack)
        viewer.sign_in("vic")
        open_case(viewer, ids["sign"])
        page = viewer.page
        assert page.locator("svg.map path.zone").count() == 1
        title = page.eval_on_selector("svg.map path.zone title", "t => t.textContent")
        assert title == "No-sign zone Old Quarter east side: no signs over the pavement"
        assert "no-sign zone" in page.inner_text("#case-map .map-legend")
        open_case(viewer, ids["bin-1"])  # garbage: no zones on its map
        assert page.locator("svg.map path.zone").count() == 0
        assert "no-sign zone" not in page.inner_text("#case-map .map-legend")
        assert viewer.errors == [] and viewer.foreign_requests() == []
    finally:
        viewer.close()
        app.state.settings = plain


def test_signed_out_browsers_see_only_the_sign_in_and_sign_out_ends_the_session(
    console: Console, stack: Stack
) -> None:
    page = console.page
    console.open()
    page.wait_for_selector("#signin-user", state="visible")
    assert page.url == f"{stack.url}/console/"
    assert page.is_hidden("#app")
    assert page.evaluate("fetch('/api/v1/cases').then(r => r.status)") == 401
    assert page.evaluate("fetch('/api/v1/live/cases?timeout=0').then(r => r.status)") == 401
    assert "Garbage overflow" not in page.inner_text("body")

    page.fill("#signin-user", "rita")
    page.fill("#signin-password", "not-her-password")
    page.press("#signin-password", "Enter")
    page.wait_for_selector("#signin-error >> text=Wrong user name or password.")
    page.fill("#signin-user", "box7")  # an edge box's account
    page.fill("#signin-password", "correct-horse-7")
    page.press("#signin-password", "Enter")
    page.wait_for_selector("#signin-error >> text=device credentials cannot sign in")
    assert page.is_hidden("#app")

    console.sign_in("rita")
    cookie = next(c for c in console.context.cookies() if c["name"] == "streetwatch_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # the page's scripts cannot read the token
    page.click("#signout")
    page.wait_for_selector("#signin-user", state="visible")
    assert page.evaluate("fetch('/api/v1/cases').then(r => r.status)") == 401
    with stack.sessions() as session:
        token = select(ApiToken.revoked).where(ApiToken.token_sha256 == hash_token(cookie["value"]))
        revoked = session.scalar(token)
    assert revoked is True  # ended on the server, not only forgotten by the browser

    # A session ended elsewhere (an admin revoked it) takes the open page back to the sign-in;
    # signing in again, as someone else, gives a working console.
    console.sign_in("rita")
    cookie = next(c for c in console.context.cookies() if c["name"] == "streetwatch_session")
    with stack.sessions.begin() as session:
        session.execute(
            update(ApiToken).where(ApiToken.token_sha256 == hash_token(cookie["value"])).values(revoked=True)
        )
    page.wait_for_selector("#signin-error >> text=Your session ended.")
    assert page.is_hidden("#app")
    console.sign_in("vic")
    assert "Read only" in page.inner_text("#actions")
    assert console.foreign_requests() == []


def test_attributes_class_note_merge_bulk_supervisor_and_users(browser: Any, stack: Stack) -> None:
    ids = case_ids(stack)
    night = [
        Sighting(
            "vehicles_vnv_138_jpg.jpg", "unsealed_truck", "truck", (370, 225, 440, 352), 3000, "van-09", True
        ),
        Sighting(
            "vehicles_vnv_206_jpg.jpg", "unsealed_truck", "truck", (60, 40, 140, 150), 3300, "van-09", True
        ),
        Sighting(
            "vehicles_vnv_827_jpg.jpg", "unsealed_truck", "truck", (0, 100, 230, 500), 3600, "van-09", True
        ),
    ]
    night_ids = set(stack.send_cases(*night, what="the night's candidates"))

    admin = Console(browser, stack)
    try:
        admin.sign_in("ada")
        page = admin.page

        # An attribute the type defines (truck load), picked from its list. Boxes drawn on the case
        # before (the triage test draws a truck) must survive the load box.
        with stack.sessions() as session:
            earlier = session.get(CaseReview, ids["truck"])
            drawn_before = len(earlier.added_boxes) if earlier is not None else 0
        open_case(admin, ids["truck"])
        # Beside the reviewer's choice, what the box's load classifier said, and which one it was.
        said = page.inner_text("#attr-box-load")
        assert "unsure" in said and "46% for covered" in said and "truck-load 1.1.0" in said, said
        # The tanker was confirmed: a covered load would say it is no violation. Refused, with why,
        # and the list goes back to what is recorded.
        page.select_option("#attr-load", "covered")
        page.wait_for_selector("#case-message >> text=no violation, but the case is confirmed as one")
        page.wait_for_function("() => document.querySelector('#attr-load').value === ''")
        refused = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
        assert admin.errors == [refused], admin.errors  # the browser's own line for the refusal
        admin.errors.clear()
        page.select_option("#attr-load", "partly_covered")
        page.wait_for_selector("#case-message >> text=load: partly covered")
        # ...and the part it is about (the cargo bed), drawn on the clean frame.
        page.click("#attr-load-box")
        page.wait_for_selector("#frame.editing")
        bed = (300.0, 160.0, 360.0, 250.0)
        drag(admin, to_screen(admin, *bed[:2], (640, 640)), to_screen(admin, *bed[2:], (640, 640)))
        admin.press("Enter")
        page.wait_for_selector("#case-message >> text=load box saved.")
        with stack.sessions() as session:
            review = session.get(CaseReview, ids["truck"])
            assert review is not None and review.attributes["load"]["value"] == "partly_covered"
            assert review.attributes["load"]["box"] == pytest.approx(list(bed), abs=3)
            assert len(review.added_boxes) == drawn_before  # what was drawn before is still there

        # Change the class (l), then a note (n, Ctrl+Enter).
        open_case(admin, ids["bin-2"])
        admin.press("l")
        page.wait_for_selector(".dialog input[type=search]")
        page.keyboard.type("garbage_bin")
        admin.press("Enter")
        page.wait_for_selector("#case-message >> text=Labelled as garbage_bin")
        admin.press("n")
        page.wait_for_selector(".dialog textarea")
        page.keyboard.type("Bin emptied on Tuesday; check again Friday")
        admin.press("Control+Enter")
        page.wait_for_selector("#case-message >> text=Note added")
        relabel, note = transitions(stack, ids["bin-2"])[-2:]
        assert (relabel.action, relabel.label, relabel.actor) == ("relabel", "garbage_bin", "ada")
        assert (note.action, note.reason) == ("note", "Bin emptied on Tuesday; check again Friday")

        # Merge a duplicate (m, the other case's number, Enter, Enter to confirm).
        open_case(admin, ids["bin-3"])
        before = len(transitions(stack, ids["bin-3"]))
        admin.press("m")  # a mistyped number naming a case of another type: said at once, nothing asked
        page.wait_for_selector(".dialog input")
        page.keyboard.type(str(ids["sign"]))
        admin.press("Enter")
        page.wait_for_selector("#case-message >> text=only cases of one type are one violation")
        assert page.locator(".dialog").count() == 0 and len(transitions(stack, ids["bin-3"])) == before
        ask_merge(admin, ids["bin-1"])
        page.wait_for_selector(".dialog >> text=Merge?")
        # Both photos side by side, and how far apart the two cases are (the van saw them 600 m apart).
        assert page.locator(".dialog .merge-pair img").count() == 2
        distance = page.inner_text("#merge-distance")
        assert re.match(r"They are (599|600|601) m apart", distance), distance
        assert "cannot be undone" in page.inner_text(".dialog")
        # A merge the question warns about is not taken by a reflex Enter: Cancel has the focus.
        admin.press("Enter")
        page.wait_for_selector(".dialog", state="detached")
        assert transitions(stack, ids["bin-3"])[-1].action != "merge"
        ask_merge(admin, ids["bin-1"])
        page.wait_for_selector(".dialog >> text=Merge?")
        page.click(".dialog button.primary")  # "Yes", on purpose
        wait_for(lambda: transitions(stack, ids["bin-3"])[-1].action == "merge", 10, "the merge")
        with stack.sessions() as session:
            merged = session.get(Case, ids["bin-3"])
            assert merged is not None and (merged.state, merged.merged_into) == ("closed", ids["bin-1"])
        # The console has taken the merge's answer (gone on to the next case, or shows this one
        # closed); then back to it.
        page.wait_for_function(
            """id => !document.querySelector('#case-title').textContent.startsWith('#' + id + ' ')
                || document.getElementById('case-state').textContent === 'Closed'""",
            arg=ids["bin-3"],
        )
        open_case(admin, ids["bin-3"])  # the case merged away says where its evidence went
        assert f"Merged into case #{ids['bin-1']}" in page.inner_text("#frame-box")
        # Each history names the other case once.
        assert f"into #{ids['bin-1']}; 1 event moved" in page.inner_text("#history")
        assert "duplicate of case" not in page.inner_text("#history")
        open_case(admin, ids["bin-1"])
        assert f"#{ids['bin-3']} merged in; 1 event moved" in page.inner_text("#history")
        # Into the closed case merged away: refused at once, and said why (not "someone else moved").
        open_case(admin, ids["bin-2"])
        ask_merge(admin, ids["bin-3"])
        page.wait_for_selector("#case-message >> text=was itself merged into")
        assert page.locator(".dialog").count() == 0

        # A sign's mounting: what makes it a violation when its permit is not the question.
        open_case(admin, ids["sign"])
        page.select_option("#attr-mounting", "protruding")
        page.wait_for_selector("#case-message >> text=mounting: protruding")
        with stack.sessions() as session:
            review = session.get(CaseReview, ids["sign"])
            assert review is not None
            assert review.attributes["mounting"] == {"value": "protruding", "box": None}
        # ...and the queue finds it again by what the reviewer recorded, for an inspector's sweep.
        page.select_option("#filter-state", "all")
        # Every choice reads whole in its filter column (the select shows the chosen one only).
        cut = page.eval_on_selector(
            "#filter-attribute",
            """s => {
                const pen = document.createElement("canvas").getContext("2d");
                pen.font = getComputedStyle(s).font;
                const room = s.clientWidth - 16;  // less the select's arrow
                return [...s.options].map(o => o.text).filter(t => pen.measureText(t).width > room);
            }""",
        )
        assert cut == [], cut
        page.select_option("#filter-attribute", "mounting:protruding")
        page.wait_for_selector("#queue-total >> text=1 of 1 shown")
        assert page.locator(f"#case-{ids['sign']}").count() == 1
        assert "done" not in (page.get_attribute(f"#case-{ids['sign']}", "class") or "")  # a listed case
        page.click("#filter-reset")
        page.wait_for_function("() => document.getElementById('filter-attribute').value === ''")

        # A night of false candidates from one box, rejected in one go through the filters.
        page.fill("#filter-device_id", "van-09")
        page.keyboard.press("Tab")
        page.select_option("#filter-candidate", "true")
        page.wait_for_selector("#queue-total >> text=3 of 3 shown")

        # An area dragged on the map narrows the list to the two northern ones.
        page.click("#filter-area")
        dots = page.locator(".dialog svg.map circle")
        assert dots.count() == 3
        boxes = sorted((dots.nth(i).bounding_box() or {} for i in range(3)), key=lambda b: b["y"])
        north, south = boxes[:2], boxes[2]
        left = min(b["x"] for b in boxes) - 10
        start = (left, north[0]["y"] - 10)
        end = (max(b["x"] for b in boxes) + 20, (north[1]["y"] + south["y"]) / 2)
        drag(admin, start, end)
        # The rectangle drawn is the one dragged, to the pixel.
        drawn = page.locator(".dialog svg.map rect.area").bounding_box()
        assert drawn is not None
        corners = (drawn["x"], drawn["y"], drawn["x"] + drawn["width"], drawn["y"] + drawn["height"])
        dragged = (*start, *end)
        assert all(abs(a - b) <= 2 for a, b in zip(corners, dragged, strict=True)), (corners, dragged)
        admin.press("Enter")
        page.wait_for_selector("#queue-total >> text=2 of 2 shown")
        page.click("#filter-area-clear")
        page.wait_for_selector("#queue-total >> text=3 of 3 shown")

        page.click("#bulk-filter")
        page.wait_for_selector(".dialog >> text=All 3 cases matching the filter")
        admin.press("2")  # reject
        page.wait_for_selector(".dialog >> text=Reject them all: why?")
        admin.press("1")  # not a violation
        page.wait_for_selector(".dialog input")
        page.keyboard.type("night glare")
        admin.press("Enter")
        page.wait_for_selector(".dialog >> text=reject 3 cases?")
        admin.press("Enter")
        page.wait_for_selector("#flash >> text=Bulk reject: 3 done.")
        for case_id in night_ids:
            last = transitions(stack, case_id)[-1]
            assert (last.to_state, last.reason_code, last.reason, last.actor) == (
                "rejected",
                "not_a_violation",
                "night glare",
                "ada",
            )
            assert last.details is not None and last.details.get("bulk")

        # A sign marked permitted: no violation, but the model was right that it is a sign.
        [sign_case] = stack.send_cases(
            Sighting(
                "signboards_vdl_IMG_0048.jpg", SIGNBOARD, "signboard", (150, 300, 500, 800), 8200, "van-15"
            ),
            what="the permitted sign's case",
        )
        stack.act(sign_case, action="reject", reject_reason="permitted")

        # The supervisor's page, and its CSV as a download from the same server.
        page.click("#nav-supervisor")
        page.wait_for_selector("#stats-precision tbody tr >> text=streetwatch-det 1.5.0")
        # These boxes run their own configuration files: no configuration installed over the air.
        assert page.inner_text("#stats-precision tbody tr td:nth-child(3)") == "box's own"
        # Two shares per row: violations (confirmed) and the model right (confirmed or permitted),
        # both of the reviewed less the excluded, as the numbers in the same row say.
        page.wait_for_selector("#stats-precision tbody tr >> text=Illegal signboard")
        rows = [r.locator("td").all_inner_texts() for r in page.locator("#stats-precision tbody tr").all()]
        for cells in rows:
            reviewed, confirmed, _rejected, permitted_n, excluded = (int(c) for c in cells[3:8])
            counted = reviewed - excluded
            assert cells[8] == f"{confirmed / counted * 100:.1f}%", cells
            assert cells[9] == f"{(confirmed + permitted_n) / counted * 100:.1f}%", cells
        # the permitted sign counts right for the model, not as a violation
        signs = [cells for cells in rows if cells[0] == "Illegal signboard" and int(cells[6]) >= 1]
        assert signs and signs[0][9] != signs[0][8], rows
        href = page.get_attribute("#stats-precision a.csv", "href")
        assert href is not None
        csv_text = page.evaluate("url => fetch(url).then(r => r.text())", href)
        assert csv_text.splitlines()[0].startswith("violation_type,model_name,model_version,config")
        page.wait_for_selector("#stats-open-cases >> text=past their SLA")
        # What reviewers recorded with their decisions: the API's counts, each value a link to its
        # cases. The tanker was confirmed with its load recorded as partly covered (above).
        labelled = "#stats-labels tbody tr[data-value='load:partly_covered']"
        page.wait_for_selector(labelled)  # each card loads on its own
        cells = page.locator(labelled).locator("td").all_inner_texts()
        answer = page.evaluate("url => fetch(url).then(r => r.json())", "/api/v1/stats/labels")
        (row,) = [r for r in answer["rows"] if (r["attribute"], r["value"]) == ("load", "partly_covered")]
        assert row["confirmed"] >= 1
        assert cells == ["partly covered violation", str(row["confirmed"]), str(row["rejected"])]
        page.wait_for_selector("#stats-labels tr.group >> text=Unsealed truck: load")
        page.click(f"{labelled} a")
        page.wait_for_selector(f"#case-{ids['truck']}")
        assert page.input_value("#filter-attribute") == "load:partly_covered"

        # An admin adds a reviewer from the users page.
        page.click("#nav-users")
        page.fill("#user-form input[name=username]", "dina")
        page.select_option("#user-form select[name=role]", "reviewer")
        page.fill("#user-form input[name=password]", "another-long-pass")
        page.click("#user-form button[type=submit]")
        page.wait_for_selector("#users-table >> text=dina")
        # A user who never used a token says so; ada, signed in here, was active.
        page.wait_for_selector("#users-table tr[data-user=dina] >> text=never")
        # ...and manages her: no button can lock ada herself out.
        assert page.locator("tr[data-user=ada] button", has_text="Disable").count() == 0
        dina = "#users-table tr[data-user=dina]"
        page.click(f"{dina} button >> text=Disable")
        page.click(".dialog button.primary")  # "Yes": disabling someone is asked twice
        page.wait_for_selector(f"{dina} >> text=disabled")
        refused = Console(browser, stack)
        try:
            refused.open()
            refused.page.fill("#signin-user", "dina")
            refused.page.fill("#signin-password", "another-long-pass")
            refused.page.press("#signin-password", "Enter")
            refused.page.wait_for_function("() => document.querySelector('#signin-error').textContent !== ''")
        finally:
            refused.close()
        page.click(f"{dina} button >> text=Enable")
        page.wait_for_selector(f"{dina} >> text=active")
        page.select_option(f"{dina} select", "admin")  # then thought better of it
        page.wait_for_selector(".dialog >> text=Make dina an admin?")
        page.click(".dialog button >> text=Cancel")
        assert page.input_value(f"{dina} select") == "reviewer"
        page.select_option(f"{dina} select", "viewer")
        page.wait_for_selector(".dialog >> text=Make dina a viewer?")
        page.click(".dialog button.primary")
        page.wait_for_selector("#flash >> text=dina is a viewer now.")
        page.click(f"{dina} button >> text=Set password…")
        page.fill(".dialog input[type=password]", "dinas-new-password")
        page.click(".dialog button.primary")
        page.wait_for_selector("#flash >> text=dina's password is set.")
        with stack.sessions() as session:
            user = session.scalars(select(User).where(User.username == "dina")).one()
            assert (user.role, user.disabled) == ("viewer", False)
        signed_in = httpx.post(
            f"{stack.url}/api/v1/auth/token", json={"username": "dina", "password": "dinas-new-password"}
        )
        assert signed_in.status_code == 201, signed_in.text
        assert admin.foreign_requests() == []
        assert admin.errors == []
    finally:
        admin.close()


#: Each chip's box against its row's visible box and the counts box: what is cut off, and each row's
#: overflow (scrollWidth over clientWidth).
CHIPS_CUT = """() => {
    const counts = document.getElementById("counts").getBoundingClientRect();
    const rows = [...document.querySelectorAll("#counts .count-row")];
    const cut = rows.flatMap(row => {
        const r = row.getBoundingClientRect();
        const seen = {left: Math.max(r.left, counts.left), top: Math.max(r.top, counts.top),
                      right: Math.min(r.left + row.clientWidth, counts.right),
                      bottom: Math.min(r.top + row.clientHeight, counts.bottom)};
        return [...row.querySelectorAll(".chip")].filter(chip => {
            const c = chip.getBoundingClientRect();
            return c.left < seen.left - 0.5 || c.right > seen.right + 0.5
                || c.top < seen.top - 0.5 || c.bottom > seen.bottom + 0.5;
        }).map(chip => chip.textContent);
    });
    const overflow = rows.filter(row => row.scrollWidth > row.clientWidth)
        .map(row => `${row.textContent}: ${row.scrollWidth} > ${row.clientWidth}`);
    return {cut, overflow};
}"""


def test_every_count_chip_reads_in_the_queue_pane_at_a_laptops_width(browser: Any, stack: Stack) -> None:
    # A case of every type, each put into one state, so that both count rows hold every chip they
    # can: van-18's, from 9500 m north (no other test's cases are there), in the order listed.
    van = "van-18"
    sightings = {
        "confirmed": Sighting(
            "garbage_atanu_001025.jpg", GARBAGE, "overflow", (100, 100, 400, 400), 9500, van
        ),
        "dispatched": Sighting(
            "garbage_atanu_001034.jpg", GARBAGE, "overflow", (80, 90, 420, 500), 9800, van
        ),
        "possibly_resolved": Sighting(
            "signboards_vdl_IMG_0048.jpg", SIGNBOARD, "signboard", (150, 300, 500, 800), 10100, van
        ),
        "rejected": Sighting(
            "vehicles_vnv_206_jpg.jpg", "unsealed_truck", "truck", (60, 40, 140, 150), 10400, van
        ),
        "resolved": Sighting("garbage_atanu_001107.jpg", GARBAGE, "overflow", (60, 60, 400, 460), 10700, van),
        "closed": Sighting("garbage_atanu_000785.jpg", GARBAGE, "overflow", (150, 180, 480, 500), 11000, van),
        "vending": Sighting(
            "garbage_atanu_000272.jpg", "street_vending", "umbrella", (120, 200, 420, 520), 11300, van
        ),
    }
    cases = dict(zip(sightings, stack.send_cases(*sightings.values(), what="van-18's cases"), strict=True))

    stack.act(cases["confirmed"], action="confirm")
    # Held for a second pass, and counted once a supervisor confirms it.
    stack.act(cases["vending"], action="confirm")
    stack.act(cases["dispatched"], action="dispatch", team="north-grid")
    stack.act(cases["rejected"], action="reject", reject_reason="not_a_violation")
    stack.act(cases["resolved"], action="resolve")
    stack.act(cases["closed"], action="resolve")
    stack.act(cases["closed"], action="close")
    # A patrol passing by without seeing it (telemetry coverage; no action a reviewer takes).
    with stack.sessions.begin() as session:
        transition(
            session, cases["possibly_resolved"], "possibly_resolved", SYSTEM_COVERAGE, f"{van} passed by"
        )

    states = ["To review", "Open", "Overdue", "Confirmed", "Dispatched", "Possibly resolved", "Rejected"]
    states += ["Resolved", "Closed"]
    viewer = Console(browser, stack, 1366, 768)  # a common laptop
    try:
        viewer.sign_in("vic")
        page = viewer.page
        page.wait_for_selector("#counts .chip >> text=Possibly resolved")
        chips = page.locator("#counts .count-row:nth-child(1) .chip").all_inner_texts()
        assert [re.sub(r" \d+$", "", c) for c in chips] == states, chips
        types = page.locator("#counts .count-row:nth-child(2) .chip").all_inner_texts()
        assert sorted(re.sub(r" \d+$", "", c) for c in types) == ["Garbage", "Signboard", "Truck", "Vending"]
        # Every chip whole in the queue pane, none past its row's edge to be scrolled to; the states
        # on three lines at most. A narrower pane (a smaller laptop, a tablet) wraps them more.
        seen = page.evaluate(CHIPS_CUT)
        assert seen == {"cut": [], "overflow": []}, seen
        states_row = "#counts .count-row:first-child .chip"
        lines = page.eval_on_selector_all(states_row, "cs => new Set(cs.map(c => c.offsetTop)).size")
        assert lines <= 3, lines
        for width, height in ((1024, 768), (768, 1024)):
            page.set_viewport_size({"width": width, "height": height})
            seen = page.evaluate(CHIPS_CUT)
            assert seen == {"cut": [], "overflow": []}, (width, seen)

        # A recount that wraps the states onto fewer lines (van-18's only possibly resolved case is
        # seen again) leaves the rows of a scrolled list where they are on screen. (A shorter
        # window, for van-18's cases to scroll.)
        page.set_viewport_size({"width": 1366, "height": 600})
        page.fill("#filter-device_id", van)
        page.keyboard.press("Tab")
        page.select_option("#filter-state", "all")
        page.wait_for_selector(f"#queue-total >> text={len(cases)} of {len(cases)} shown")
        page.evaluate("() => { document.getElementById('queue').scrollTop = 60; }")
        assert page.evaluate("() => document.getElementById('queue').scrollTop") == 60
        row = page.locator("#queue .row").nth(3)
        where, tall = row.bounding_box(), page.locator("#counts").bounding_box()
        stack.act(cases["possibly_resolved"], action="reopen")
        page.wait_for_selector("#counts .chip >> text=Possibly resolved", state="detached")
        now, short = row.bounding_box(), page.locator("#counts").bounding_box()
        assert tall is not None and short is not None and short["height"] < tall["height"], (tall, short)
        assert where is not None and now is not None and abs(now["y"] - where["y"]) <= 2, (where, now)
        assert page.evaluate(CHIPS_CUT) == {"cut": [], "overflow": []}
        assert viewer.errors == [] and viewer.foreign_requests() == []
    finally:
        viewer.close()


def test_a_device_prefix_lists_one_depots_boxes_and_keeps_them_as_they_arrive(
    browser: Any, stack: Stack
) -> None:
    # Two vans of depot d7 and one of d8, from 12000 m north (no other test's cases are there).
    def pile(device_id: str, north_m: float) -> Sighting:
        box = (100.0, 100.0, 400.0, 400.0)
        return Sighting("garbage_atanu_001025.jpg", GARBAGE, "overflow", box, north_m, device_id)

    first, second, other = stack.send_cases(
        pile("d7-van-1", 12000), pile("d7-van-2", 12300), pile("d8-van-1", 12600), what="the depots' cases"
    )
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("vic")
        page = viewer.page
        only_device(page, "d7-*", 2)
        assert page.locator(f"#case-{first}").count() == 1 and page.locator(f"#case-{second}").count() == 1
        assert page.locator(f"#case-{other}").count() == 0
        # Live: a third d7 van's case joins the list, another depot's does not.
        arrived, elsewhere = stack.send_cases(
            pile("d7-van-3", 12900), pile("d8-van-2", 13200), what="the later cases"
        )
        page.wait_for_selector(f"#case-{arrived}")
        assert page.locator(f"#case-{elsewhere}").count() == 0
        # A star anywhere but at the end is refused, with the reason, and the list stays as it was.
        page.fill("#filter-device_id", "d*-van")
        page.keyboard.press("Tab")
        page.wait_for_selector("#flash >> text=only a trailing * is a wildcard")
        for case_id in (first, second, arrived):
            assert page.locator(f"#case-{case_id}").count() == 1
        refused = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
        assert refused in viewer.errors and set(viewer.errors) == {refused}, viewer.errors
    finally:
        viewer.close()


def test_g_goes_to_a_case_by_its_number_in_the_list_or_not(browser: Any, stack: Stack) -> None:
    # A case a caller names that the queue's filters leave out (rejected, not to review): 13500 m.
    [named] = stack.send_cases(
        Sighting("garbage_atanu_001034.jpg", GARBAGE, "overflow", (80, 90, 420, 500), 13500, "van-19"),
        what="the named case",
    )
    stack.act(named, action="reject", reject_reason="not_a_violation")
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("vic")
        page = viewer.page
        first = viewer.case_id()
        assert page.locator(f"#case-{named}").count() == 0  # not in the list under its filters

        def go(text: str) -> None:
            viewer.press("g")
            page.wait_for_selector(".dialog >> text=Go to case")
            page.keyboard.type(text)
            viewer.press("Enter")

        # A number that is no case, and text that is no number: said, and the open case stays.
        go("999999")
        page.wait_for_selector("#flash >> text=There is no case #999999.")
        go("twelve")
        page.wait_for_selector('#flash >> text="twelve" is not a case number.')
        assert viewer.case_id() == first
        go(f"#{named}")
        viewer.wait_for_case(named)
        # The list keeps its filters.
        assert page.eval_on_selector("#filter-state", "s => s.value") == "review"
        assert f"case={named}" in page.evaluate("() => location.hash")  # a reload keeps it open
        missing = "Failed to load resource: the server responded with a status of 404 (Not Found)"
        assert set(viewer.errors) <= {missing}, viewer.errors
    finally:
        viewer.close()


def test_a_trucks_load_is_recorded_by_keys_and_asked_by_a_decision(browser: Any, stack: Stack) -> None:
    # van-20's three trucks and a pile, from 14000 m north.
    def truck_at(north_m: float) -> Sighting:
        box = (60.0, 40.0, 140.0, 150.0)
        return Sighting("vehicles_vnv_206_jpg.jpg", "unsealed_truck", "truck", box, north_m, "van-20")

    said = {"load": "uncovered", "load_score": 0.91, "load_model": "truck-load 1.1.0"}
    truck, pile, open_load, sealed, typed, sent_out = stack.send_cases(
        truck_at(14000),
        Sighting("garbage_atanu_001107.jpg", GARBAGE, "overflow", (60, 60, 400, 460), 14300, "van-20"),
        replace(truck_at(14600), attributes=said),
        truck_at(14900),
        truck_at(15200),
        truck_at(15500),
        what="van-20's trucks and pile",
    )

    def load(case_id: int) -> str | None:
        with stack.sessions() as session:
            review = session.get(CaseReview, case_id)
            recorded = None if review is None else (review.attributes or {}).get("load")
            return None if recorded is None else str(recorded["value"])

    reviewer = Console(browser, stack)
    try:
        reviewer.sign_in("rita")
        page = reviewer.page
        only_device(page, "van-20", 6)
        # The queue's CSV holds the cases its filters match, every page of them.
        href = page.get_attribute("#queue-csv", "href")
        assert href is not None and href.startswith("/api/v1/cases/export?") and "device_id=van-20" in href
        exported = page.evaluate("url => fetch(url).then(r => r.text())", href)
        ids = {int(row["case_id"]) for row in csv.DictReader(io.StringIO(exported))}
        assert ids == {truck, pile, open_load, sealed, typed, sent_out}
        open_case(reviewer, truck)
        reviewer.press("a")
        page.wait_for_selector(f".dialog >> text=load of case #{truck}")
        assert "An open bed with no load." in page.inner_text(".dialog")  # each value says when to pick it
        reviewer.press("1")
        wait_for(lambda: load(truck) == "uncovered", 10, "the load recorded")
        assert reviewer.case_id() == truck  # the case stays open for the decision
        page.wait_for_function("() => document.querySelector('#attr-load').value === 'uncovered'")
        # Again: the recorded value is marked, and the last choice clears it.
        reviewer.press("a")
        page.wait_for_selector(".dialog >> text=uncovered (recorded)")
        clear = page.locator(".dialog .choices button").count()
        reviewer.press(str(clear))
        wait_for(lambda: load(truck) is None, 10, "the load cleared")
        reviewer.press("a")
        page.wait_for_selector(".dialog >> text=covered")
        reviewer.press("3")
        wait_for(lambda: load(truck) == "covered", 10, "the load recorded again")
        # Covered is no violation: confirming asks again, among the loads that are, and says why.
        reviewer.press("c")
        page.wait_for_selector(f".dialog >> text=Confirm case #{truck}: its load?")
        assert "It is recorded as covered, which is no violation." in page.inner_text(".dialog")
        assert page.locator(".dialog .choices button").all_inner_texts()[-1] == (
            "3\ncan't tell\ndecide and clear the load recorded"
        )
        reviewer.press("1")
        wait_for(lambda: transitions(stack, truck)[-1].to_state == "confirmed", 10, "the confirmation")
        assert load(truck) == "uncovered"
        assert page.locator(".dialog").count() == 0
        # Without a recorded load the decision asks it, among the values that fit the decision.
        open_case(reviewer, open_load)
        reviewer.press("c")
        page.wait_for_selector(f".dialog >> text=Confirm case #{open_load}: its load?")
        # Beside the question, what the box's load classifier answered.
        said_text = "The box's load classifier: uncovered (91%), truck-load 1.1.0."
        assert f"State of the truck's cargo bed. {said_text}" in page.inner_text(".dialog")
        assert page.locator(".dialog .choices button").all_inner_texts() == [
            "1\nuncovered\nLoose load (earth, sand, rubble) open to the air.",
            "2\npartly covered\nA tarp or net that leaves part of the load open; still a violation.",
            "3\ncan't tell\ndecide without recording the load",
        ]
        # The confirmation's answer is held back while the reviewer opens another case meanwhile.
        held: list[Any] = []

        def hold(route: Any) -> None:
            held.append(route)

        page.route("**/api/v1/cases/*/actions", hold)
        with page.expect_request("**/api/v1/cases/*/actions"):
            reviewer.press("2")
        open_case(reviewer, sealed)
        (answer,) = held
        answer.continue_()
        page.unroute("**/api/v1/cases/*/actions", hold)
        page.wait_for_selector(f"#case-{open_load}.done")  # the answer is in: its row says so...
        wait_for(lambda: load(open_load) == "partly_covered", 10, "the load with the confirmation")
        assert transitions(stack, open_load)[-1].to_state == "confirmed"
        # ...and the reviewer stays on the case they opened, not moved on past it by that answer.
        assert f"case={sealed}" in page.evaluate("() => location.hash")
        assert reviewer.case_id() == sealed
        reviewer.press("x", "1")
        page.wait_for_selector(f".dialog >> text=Case #{sealed} is no violation: its load?")
        reviewer.press("2")  # covered, empty, closed body: empty
        wait_for(lambda: load(sealed) == "empty", 10, "the load with the rejection")
        assert transitions(stack, sealed)[-1].reason_code == "not_a_violation"
        # Typed at speed, in one go: the c waits for the load a 1 records, so it asks nothing more.
        open_case(reviewer, typed)
        reviewer.press("a", "1", "c")
        wait_for(lambda: transitions(stack, typed)[-1].to_state == "confirmed", 10, "a 1 c")
        assert load(typed) == "uncovered"
        assert page.locator(".dialog").count() == 0
        # Dispatching a new truck decides it as confirming does: its load is asked first.
        open_case(reviewer, sent_out)
        reviewer.press("d")
        page.wait_for_selector(f".dialog >> text=Dispatch case #{sent_out}: its load?")
        reviewer.press("1")
        page.wait_for_selector(".dialog >> text=its load?", state="detached")
        page.wait_for_selector(f".dialog >> text=Dispatch case #{sent_out}")
        if page.locator(".dialog .choices button").count():  # the teams the module's admin added
            reviewer.press("1")
        else:  # run alone: no team defined, so the team is typed
            page.keyboard.type("north-grid")
            reviewer.press("Enter")
        wait_for(lambda: transitions(stack, sent_out)[-1].to_state == "dispatched", 10, "the dispatch")
        assert load(sent_out) == "uncovered"
        # A pile has nothing to record: said, and nothing is sent.
        open_case(reviewer, pile)
        reviewer.press("a")
        page.wait_for_selector("#case-message >> text=A garbage overflow case has no attributes to record.")
        assert page.locator(".dialog").count() == 0
        assert reviewer.errors == []
    finally:
        reviewer.close()
