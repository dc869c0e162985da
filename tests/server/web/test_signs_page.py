"""The console's signs page in a real headless Chromium: the signboard register and the no-sign zones
in force, as dispatchers see them. Everything real: a sign case arrives from a box over Mosquitto, a
reviewer marks it permitted, the box sees the sign again (attached, no case), and the page shows
the entry, its photo, that sighting and a permit gone out of date; a reviewer imports the permit
office's list (checked first) and removes an entry; a broken save of the zone file shows as a
problem beside the zones still in force."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from server.db.models import Case, Sign, SignSighting
from server.settings import SignSettings
from tests.server.factories import offset
from tests.server.signs.zone_files import write_zones, zone_feature
from tests.server.web.console import Console
from tests.server.web.stack import Sighting, Stack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.broker]

SIGN_BOX = (60.0, 40.0, 560.0, 300.0)
SIGN = Sighting("signboards_vdl_IMG_0048.jpg", "illegal_signboard", "signboard", SIGN_BOX, 400)
#: Another shop's sign where the first one hung: a "changed signboard" case.
OTHER_SIGN = Sighting("signboards_vdl_IMG_0146.jpg", "illegal_signboard", "signboard", SIGN_BOX, 400)
#: Until the register's table shows this many entries.
ROWS = "n => document.querySelectorAll('#signs-table tbody tr[data-sign]').length === n"
SIGN_CROP = Path(__file__).parents[1] / "signs" / "crops" / "vdl_IMG_0011_0.jpg"  # a real sign crop
PILE = Sighting("garbage_atanu_000272.jpg", "garbage_overflow", "overflow", (120, 200, 420, 520), 0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("signs-page"))
    try:
        yield running
    finally:
        running.close()


def api(stack: Stack, user: str) -> httpx.Client:
    token = stack.tokens[user]
    return httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {token}"})


def sightings(stack: Stack, outcome: str) -> int:
    with stack.sessions() as session:
        return len(session.scalars(select(SignSighting).where(SignSighting.outcome == outcome)).all())


@pytest.fixture(scope="module")
def register(stack: Stack) -> dict[str, int]:
    """A permitted sign (from its case, then seen again) and an imported permit that ran out."""
    stack.send(PILE)  # something in the queue, so a sign-in lands on a case
    stack.send(SIGN)
    wait_for(lambda: sightings(stack, "new") == 1, 20, "the sign's case")
    with stack.sessions() as session:
        case_id = session.scalars(select(Case.id).where(Case.violation_type == "illegal_signboard")).one()
    with api(stack, "rita") as rita:
        permit = {"action": "reject", "reject_reason": "permitted"}
        reply = rita.post(f"/cases/{case_id}/actions", json=permit)
        assert reply.status_code == 200, reply.text
        lat, lon = offset(900, 0)
        past = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat()
        body = {"lat": lat, "lon": lon, "permit_id": "P-2024-017", "valid_until": past}
        reply = rita.post("/signs", json={**body, "description": "bakery"})
        assert reply.status_code == 201, reply.text
        imported = reply.json()["id"]
    stack.send(SIGN, at=datetime.now(timezone.utc) - timedelta(seconds=5))  # the next pass
    wait_for(lambda: sightings(stack, "attached") == 1, 20, "the sign attached to its entry")
    stack.send(OTHER_SIGN, at=datetime.now(timezone.utc) - timedelta(seconds=2))  # a new sign, same place
    wait_for(lambda: sightings(stack, "changed") == 1, 20, "the changed sign's case")
    with stack.sessions() as session:
        permitted = session.scalars(select(Sign.id).where(Sign.source == "review")).one()
        changed = session.scalars(select(SignSighting.case_id).where(SignSighting.outcome == "changed")).one()
    assert changed is not None
    return {"case": case_id, "permitted": permitted, "imported": imported, "changed": changed}


def open_signs(console: Console) -> None:
    console.page.click("#nav-signs")
    console.page.wait_for_selector("#signs-table tbody tr[data-sign]")


def test_a_viewer_finds_why_a_sign_raised_nothing_and_which_permit_ran_out(
    browser: Any, stack: Stack, register: dict[str, int]
) -> None:
    viewer = Console(browser, stack)
    try:
        viewer.sign_in("vic")
        open_signs(viewer)
        page = viewer.page
        assert page.locator("#signs-table tbody tr[data-sign]").count() == 2
        imported = page.inner_text(f"#signs-table tr[data-sign='{register['imported']}']")
        assert "P-2024-017" in imported and "expired" in imported and "permit list" not in imported
        assert page.locator(f"#signs-table tr[data-sign='{register['imported']}'] td.expired").count() == 1
        permitted = page.inner_text(f"#signs-table tr[data-sign='{register['permitted']}']")
        assert f"case #{register['case']}" in permitted and "not yet" not in permitted  # seen again

        page.fill("#signs-filters input[name=permit_id]", "P-2024-017")
        page.press("#signs-filters input[name=permit_id]", "Tab")  # a change event, as a person leaves it
        page.wait_for_function(ROWS, arg=1)
        assert page.inner_text("#signs-count") == "1–1 of 1"
        page.fill("#signs-filters input[name=permit_id]", "")
        page.press("#signs-filters input[name=permit_id]", "Tab")
        page.wait_for_function(ROWS, arg=2)

        page.click(f"#signs-table tr[data-sign='{register['permitted']}']")
        page.wait_for_selector("#sign-sightings tr[data-outcome='attached']")
        assert "attached (no case)" in page.inner_text("#sign-sightings")
        page.wait_for_function("() => document.querySelector('#sign-detail img.sign-photo')?.complete")
        loaded = page.eval_on_selector("#sign-detail img.sign-photo", "img => img.naturalWidth")
        assert loaded > 0  # the sign's own crop, from the evidence store
        # The map under the register: both entries, the open one in red; a dot opens its entry.
        assert page.locator("#signs-map circle.case").count() == 1
        assert page.locator("#signs-map circle").count() == 2
        assert page.locator("#sign-remove").count() == 0  # a viewer reads, a reviewer removes...
        assert page.locator("#permit-import").count() == 0  # ...and imports
        assert "No zone file is configured" in page.inner_text("#signs-zones")

        # The supervisor's card: what the register kept out of the queue.
        page.click("#nav-supervisor")
        card = page.wait_for_selector("#stats-signs tr[data-outcome='attached']")
        assert card is not None
        summary = page.inner_text("#stats-signs")
        assert "1 of 3 signs seen were registered and opened no case." in summary
        assert "2 entries in force (1 with a lapsed permit)" in summary

        # The changed sign's case shows the permitted one beside it, and links to its entry.
        page.evaluate("id => { location.hash = '#/queue?state=all&case=' + id; }", register["changed"])
        viewer.wait_for_case(register["changed"])
        facts = page.inner_text("#register-facts")
        assert f"Changed: looks different from entry #{register['permitted']}" in facts and "alike" in facts
        page.wait_for_function("() => document.querySelector('#register-facts img')?.complete")
        assert page.eval_on_selector("#register-facts img", "img => img.naturalWidth") > 0
        # The evidence package of the case, as an inspector takes it away.
        with page.expect_download() as download:
            page.click("#case-package")
        saved = download.value.path()
        assert download.value.suggested_filename == f"streetwatch-case-{register['changed']}.zip"
        with zipfile.ZipFile(saved) as zipped:
            assert {"manifest.json", "summary.html", "SHA256SUMS"} <= set(zipped.namelist())
            manifest = json.loads(zipped.read("manifest.json"))
        assert manifest["case"]["sign_register"]["outcome"] == "changed" and len(manifest["files"]) == 3

        page.click(f"#register-facts a[href='#/signs?entry={register['permitted']}']")
        page.wait_for_selector(f"#sign-detail h3 >> text=Entry #{register['permitted']}")
        assert viewer.errors == [] and viewer.foreign_requests() == []
    finally:
        viewer.close()


def test_a_reviewer_imports_permits_removes_an_entry_and_sees_a_broken_zone_save(
    browser: Any, stack: Stack, register: dict[str, int], tmp_path: Path
) -> None:
    corners = [offset(n, e) for n, e in ((0, 2), (0, 12), (600, 12), (600, 2), (0, 2))]
    path = write_zones(tmp_path, zone_feature("Old Quarter east side", "no signs over the pavement", corners))
    app = stack.http.config.app
    plain = app.state.settings
    app.state.settings = plain.model_copy(
        update={"signs": SignSettings(no_sign_zones=str(path), no_sign_zones_check_s=0)}
    )
    reviewer = Console(browser, stack)
    try:
        reviewer.sign_in("rita")
        open_signs(reviewer)
        page = reviewer.page
        page.wait_for_selector("#zones-table tr[data-zone='Old Quarter east side']")
        assert page.locator("#zones-problem").count() == 0
        assert page.locator("#signs-map path.zone").count() == 1  # the zone reaches the register's map
        page.click("#signs-map circle >> nth=0")  # a dot opens its entry
        page.wait_for_selector("#sign-detail h3")
        assert page.locator("#signs-map circle.case").count() == 1

        # The permit office's list and its photo, chosen together: checked first (nothing
        # changes), imported on OK.
        permits = tmp_path / "permits.csv"
        with stack.sessions() as session:  # HB-0042 is the sign of the case opened as "changed"
            changed = session.get(Case, register["changed"])
            assert changed is not None and changed.lat is not None and changed.lon is not None
            lat, lon = changed.lat, changed.lon
        permits.write_text(
            f"permit_id,lat,lon,valid_until,photo\nHB-0042,{lat},{lon},2030-01-31,photos/hb-0042.jpg\n"
            f"HB-0043,north,{lon},,\n"
        )
        photo = tmp_path / "hb-0042.jpg"
        shutil.copyfile(SIGN_CROP, photo)
        page.set_input_files("#permit-file", str(photo))  # the photo without its list
        page.wait_for_selector("#flash >> text=Choose the permit list itself")
        page.set_input_files("#permit-file", [str(permits), str(photo)])
        check = page.inner_text("#permit-check")
        assert "1 to add, 0 to update (same permit id), 1 row to skip; 1 photo sent." in check
        assert "row 3: position 'north'" in check
        with stack.sessions() as session:
            assert len(session.scalars(select(Sign.id)).all()) == 2  # the check changed nothing
        # The open case standing where the permit is, named before anything changes (its link opens
        # a new tab, so the question stays)...
        assert f"#{register['changed']}" in page.inner_text("#permit-check #permit-open-cases")
        assert page.get_attribute("#permit-check #permit-open-cases a", "target") == "_blank"
        page.click(".dialog button.primary")  # "OK"
        page.wait_for_selector("#flash >> text=permits.csv: 1 added, 0 updated, 1 skipped.")
        # ...and after: it stays open, a link away. The link leaves the panel: the case is not
        # opened behind it.
        covered = page.inner_text(".dialog #permit-open-cases")
        assert (
            covered.startswith("1 open signboard case stands where a permit now is")
            and f"#{register['changed']}" in covered
        )
        page.click(f".dialog #permit-open-cases a >> text=#{register['changed']}")
        page.wait_for_selector(".dialog", state="detached")
        page.wait_for_function(
            "id => (document.querySelector('#case-title') || {}).textContent?.startsWith('#' + id + ' ')",
            arg=register["changed"],
        )
        assert page.locator("#overlay:not([hidden])").count() == 0
        page.click("#nav-signs")
        page.wait_for_function(ROWS, arg=3)
        assert "HB-0042" in page.inner_text("#signs-table")
        with stack.sessions() as session:
            imported = session.scalars(select(Sign).where(Sign.permit_id == "HB-0042")).one()
            assert imported.crop_sha256 == hashlib.sha256(SIGN_CROP.read_bytes()).hexdigest()
        page.click(f"#signs-table tr[data-sign='{imported.id}']")  # its photo is shown, loaded
        page.wait_for_function(
            "() => { const i = document.querySelector('#sign-detail img.sign-photo'); "
            "return i && i.complete && i.naturalWidth > 0; }"
        )

        page.click(f"#signs-table tr[data-sign='{register['imported']}']")
        page.click("#sign-remove")
        page.click(".dialog button.primary")  # "Yes"
        page.wait_for_function(
            "id => !document.querySelector(`#signs-table tr[data-sign='${id}']`)", arg=register["imported"]
        )
        with stack.sessions() as session:
            left = session.scalars(select(Sign.permit_id).where(Sign.id != register["permitted"])).all()
            assert left == ["HB-0042"]  # the lapsed permit is gone, the sign from its case stays

        # The permit office's number for the sign registered from its case, and its last day.
        page.click(f"#signs-table tr[data-sign='{register['permitted']}']")
        page.click("#sign-edit")
        page.fill("#sign-edit-form input[name=permit_id]", "SB-2026-88")
        page.fill("#sign-edit-form input[name=valid_until]", "2027-03-31")
        page.click(".dialog button.primary")
        page.wait_for_selector("#flash >> text=changed.")
        row = f"#signs-table tr[data-sign='{register['permitted']}']"
        shows = "([sel, text]) => document.querySelector(sel)?.textContent.includes(text)"
        page.wait_for_function(shows, arg=[row, "SB-2026-88"])
        assert "through 2027-03-31" in page.inner_text(row)
        with stack.sessions() as session:
            edited = session.get(Sign, register["permitted"])
            assert edited is not None and edited.valid_until is not None
            assert edited.valid_until.isoformat().startswith("2027-03-31T23:59:59")

        path.write_text('{"type": "FeatureCollection", "features": [')  # an editor's half-written save
        os.utime(path, ns=(time.time_ns() + 10**9,) * 2)
        page.click("#nav-queue")
        open_signs(reviewer)  # the page reads the zones again each time it is shown
        problem = page.inner_text("#zones-problem")
        assert "is not JSON" in problem and "stay in force" in problem
        assert page.locator("#zones-table tr[data-zone='Old Quarter east side']").count() == 1

        # The case the permit came too late for shows it, with its photo, until someone decides.
        page.evaluate("id => { location.hash = '#/queue?state=open&case=' + id; }", register["changed"])
        reviewer.wait_for_case(register["changed"])
        since = page.inner_text("#register-facts .register-since")
        assert f"Registered since it opened: entry #{imported.id} (permit HB-0042), 0.0 m away." in since, (
            since
        )
        assert page.locator("#register-facts .register-since img.register-photo").count() == 1
        assert reviewer.errors == [] and reviewer.foreign_requests() == []
    finally:
        reviewer.close()
        app.state.settings = plain
