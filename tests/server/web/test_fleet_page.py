"""The console's fleet page in a real headless Chromium: what every box runs, its health, and a
halted rollout with its reason, as a viewer sees them (real ingest, real Mosquitto, uvicorn)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from server.db.models import Device, Rollout, RolloutTarget
from streetwatch.messages import StatusMessage
from streetwatch.topics import status_topic
from tests.server.web.console import Console
from tests.server.web.stack import Sighting, Stack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.broker]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("fleet-page"))
    try:
        yield running
    finally:
        running.close()


def test_a_viewer_sees_each_boxs_versions_health_and_the_halted_rollout(browser: Any, stack: Stack) -> None:
    now = datetime.now(timezone.utc)
    stack.send(Sighting("garbage_atanu_000272.jpg", "garbage_overflow", "overflow", (120, 200, 420, 520), 0))
    for device_id in ("van-01", "van-02"):
        status = StatusMessage(
            state="online", device_id=device_id, software_version="0.9.0",
            models=[{"name": "streetwatch-det", "version": "1.0.0"}], at=now,
        )  # fmt: skip
        stack.publisher.publish(status_topic(device_id), status.model_dump_json(), qos=1, retain=True)

    def both_online() -> bool:
        with stack.sessions() as session:
            return len(session.scalars(select(Device).where(Device.status == "online")).all()) == 2

    wait_for(both_online, 20, "both boxes online")
    with stack.sessions.begin() as session:
        rollout = Rollout(
            kind="model", name="streetwatch-det", version="2.0.0", sha256="0" * 64, size=1, signature="s",
            source="/nowhere", selector="devices van-01,van-02", state="halted", waves=[1, 1], current_wave=0,
            reply_timeout_s=900, precision_margin=0.05, created_at=now, updated_at=now,
            halted_reason="van-01 failed: outputs have shape (1, 7)",
        )  # fmt: skip
        rollout.targets.append(
            RolloutTarget(device_id="van-01", wave=0, command_id="model-a", state="failed", step="probe",
                          reason="outputs have shape (1, 7)")
        )  # fmt: skip
        rollout.targets.append(
            RolloutTarget(device_id="van-02", wave=1, command_id="model-b", state="cancelled")
        )
        session.add(rollout)

    # box7 (an edge box's account) cannot get through the broker: it says so over HTTP.
    refused = "broker 10.0.0.5:8883 refused the connection as 'box7': Not authorized"
    reply = httpx.put(
        f"{stack.url}/api/v1/fleet/devices/box7/link", json={"problem": refused},
        headers={"Authorization": f"Bearer {stack.tokens['box7']}"}, timeout=10,
    )  # fmt: skip
    assert reply.status_code == 204, reply.text

    console = Console(browser, stack)
    console.page.clock.install()  # the page's own timers, moved on below instead of waited for
    try:
        console.sign_in("vic")
        console.page.click("#nav-fleet")
        page = console.page
        page.wait_for_selector("#fleet-boxes tr[data-device='van-01']")
        failing = page.inner_text("#fleet-boxes tr[data-device='van-01']")
        assert "streetwatch-det 1.0.0" in failing and "update failed" in failing and "probe" in failing
        assert page.get_attribute("#fleet-boxes tr[data-device='van-02']", "data-health") == "ok"
        halted = page.inner_text("#fleet-rollouts tr[data-state='halted']")
        assert "model streetwatch-det 2.0.0" in halted and "van-01 failed: outputs have shape" in halted
        assert "1 cancelled, 1 failed" in halted
        box7 = "#fleet-boxes tr[data-device='box7']"
        assert page.get_attribute(box7, "data-health") == "refused"
        assert f"broker refuses it\n{refused} (since " in page.inner_text(box7)

        # A box that comes online while the page is shown appears on the next asking, no reload.
        status = StatusMessage(
            state="online", device_id="van-03", software_version="0.9.0",
            models=[{"name": "streetwatch-det", "version": "1.0.0"}], at=datetime.now(timezone.utc),
        )  # fmt: skip
        stack.publisher.publish(status_topic("van-03"), status.model_dump_json(), qos=1, retain=True)
        wait_for(lambda: _online(stack, "van-03"), 20, "van-03 online")
        assert page.locator("#fleet-boxes tr[data-device='van-03']").count() == 0
        assert page.locator("#fleet-boxes td.stale").count() == 0  # every box heard from is current
        page.clock.fast_forward(16_000)
        page.wait_for_selector("#fleet-boxes tr[data-device='van-03']")
        assert "As of " in page.inner_text("#fleet-updated")
        # A box gone offline keeps its last figures, shown as such.
        gone = StatusMessage(
            state="offline", device_id="van-02", software_version="0.9.0", at=datetime.now(timezone.utc)
        )
        stack.publisher.publish(status_topic("van-02"), gone.model_dump_json(), qos=1, retain=True)
        wait_for(lambda: not _online(stack, "van-02"), 20, "van-02 offline")
        page.clock.fast_forward(16_000)
        page.wait_for_selector("#fleet-boxes tr[data-device='van-02'][data-health='offline'] td.stale")
        assert page.locator("#fleet-boxes tr[data-device='van-02'] td.stale").count() == 2
        assert console.errors == [] and console.foreign_requests() == []
    finally:
        console.close()


def _online(stack: Stack, device_id: str) -> bool:
    with stack.sessions() as session:
        device = session.get(Device, device_id)
        return device is not None and device.status == "online"
