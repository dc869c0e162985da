"""The SQLite outbox on its own: order, size and age policy, persisted counters, disk full, corruption."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.outbox import Changes, Outbox, OutboxLimits, OutboxMessage
from edge.outbox.schema import SCHEMA, SCHEMA_VERSION
from streetwatch.errors import StorageError

MIB = 1024 * 1024


def ev(i: int, size: int = 100) -> OutboxMessage:
    return OutboxMessage("event", "streetwatch/v1/box/events", b"%06d" % i + b"e" * (size - 6))


def img(i: int, size: int) -> OutboxMessage:
    return OutboxMessage("evidence", f"streetwatch/v1/box/evidence/{i:064x}", b"%06d" % i + b"j" * (size - 6))


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_messages_come_back_in_commit_order_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path, OutboxLimits(max_bytes=MIB, max_age_s=3600))
    ids = box.put([img(0, 500), img(1, 400), ev(0)])
    ids += box.put([ev(1)])
    assert ids == sorted(ids)
    box.close()

    again = Outbox(path, OutboxLimits(max_bytes=MIB, max_age_s=3600))
    reader = again.reader()
    rows = reader.after(0, 10)
    assert [(r.kind, r.payload[:6]) for r in rows] == [
        ("evidence", b"000000"),
        ("evidence", b"000001"),
        ("event", b"000000"),
        ("event", b"000001"),
    ]
    reader.apply(Changes(broker_took=[(5.0, rows[1].id)]))  # the broker took row 1; re-send at t=5
    reader.delete([rows[0].id, rows[2].id, 999_999])  # an unknown id (dropped meanwhile) is fine
    assert [r.id for r in reader.after(0, 10)] == [rows[3].id]  # row 1 waits for its re-send time
    assert reader.due(4.9, 10) == []
    assert [(r.id, r.attempts) for r in reader.due(5.0, 10)] == [(rows[1].id, 1)]
    depth = again.depth()
    assert (depth.events, depth.evidence, depth.bytes) == (1, 1, 400 + 100)
    reader.close()
    again.close()


def test_size_limit_drops_evidence_first_then_events_oldest_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=MIB, max_age_s=3600))
    box.put([img(i, 200_000) for i in range(4)] + [ev(i, 50_000) for i in range(4)])  # 1.0 MB: fits
    assert box.depth().bytes == 1_000_000

    box.put([ev(4, 250_000)])  # needs 250 kB: two oldest images go
    reader = box.reader()
    kept = reader.after(0, 100)
    assert [(r.kind, r.payload[:6]) for r in kept if r.kind == "evidence"] == [
        ("evidence", b"000002"),
        ("evidence", b"000003"),
    ]
    assert box.dropped() == {"evidence_size_limit": 2}

    box.put([ev(5, 600_000)])  # more than the remaining evidence: then the oldest events go
    kinds = [(r.kind, r.payload[:6]) for r in reader.after(0, 100)]
    assert ("evidence", b"000002") not in kinds and ("evidence", b"000003") not in kinds
    # 850 kB stored + 600 kB new = 401,424 bytes over 1 MiB: 400 kB of images, then the oldest event.
    assert kinds[0] == ("event", b"000001")
    assert box.dropped() == {"evidence_size_limit": 4, "event_size_limit": 1}
    assert box.depth().bytes <= MIB
    reader.close()
    box.close()

    reopened = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=MIB, max_age_s=3600))
    assert reopened.dropped() == {"evidence_size_limit": 4, "event_size_limit": 1}  # persisted
    reopened.close()


def test_a_message_larger_than_the_whole_outbox_is_refused_and_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=MIB, max_age_s=3600))
    ids = box.put([img(0, MIB + 1), ev(0)])
    assert len(ids) == 1
    assert box.depth().events == 1 and box.depth().evidence == 0
    assert box.dropped() == {"evidence_too_large": 1}
    box.close()


def test_a_forward_clock_jump_of_14_days_ages_nothing(tmp_path: Path) -> None:
    wall, running = Clock(), Clock(0.0)
    limits = OutboxLimits(max_bytes=MIB, max_age_s=1000, evidence_max_age_s=100)
    box = Outbox(tmp_path / "o.sqlite3", limits, clock=wall, monotonic=running)
    box.put([img(0, 10), ev(0)])
    wall.now += 14 * 86400  # NTP/GPS corrects a clock that was two weeks behind
    running.now += 1.0
    assert box.expire() == {}
    assert (box.depth().events, box.depth().evidence) == (1, 1)

    running.now += 150  # the box really ran past the evidence age limit
    assert box.expire() == {"evidence_age_limit": 1}
    running.now += 1000
    assert box.expire() == {"event_age_limit": 1}
    assert box.dropped() == {"evidence_age_limit": 1, "event_age_limit": 1}
    box.close()


def test_age_carries_over_restarts_on_the_outbox_clock(tmp_path: Path) -> None:
    limits = OutboxLimits(max_bytes=MIB, max_age_s=1000)
    running = Clock(5000.0)
    box = Outbox(tmp_path / "o.sqlite3", limits, monotonic=running)
    box.put([ev(0)])
    running.now += 600
    assert box.expire() == {}
    box.close()

    after_reboot = Clock(3.0)  # a monotonic clock starts over after a reboot
    again = Outbox(tmp_path / "o.sqlite3", limits, clock=lambda: 0.0, monotonic=after_reboot)
    after_reboot.now += 300  # 900 s of running time in all: still young
    assert again.expire() == {}
    after_reboot.now += 200  # 1100 s
    assert again.expire() == {"event_age_limit": 1}
    again.close()


def test_a_full_database_drops_old_images_to_store_new_events(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=64 * MIB, max_age_s=3600))
    box.put([img(i, 20_000) for i in range(35)])  # older images waiting for the server
    pages = box._conn.execute("PRAGMA page_count").fetchone()[0]
    box._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own "disk full"
    for i in range(100):
        box.put([ev(i, 500)])
    depth = box.depth()
    assert depth.events == 100, "every new event is stored"
    assert depth.evidence < 35
    dropped = box.dropped()
    assert dropped["evidence_disk_full"] == 35 - depth.evidence
    assert "storage_error" not in dropped and "event_disk_full" not in dropped
    reader = box.reader()
    kept = [r.payload[:6] for r in reader.after(0, 200) if r.kind == "evidence"]
    assert kept == [b"%06d" % i for i in range(35 - depth.evidence, 35)]  # the oldest went first
    reader.close()
    box.close()


def test_a_write_that_cannot_be_stored_is_a_clear_error_counted_across_restarts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=64 * MIB, max_age_s=3600))
    box.put([ev(0)])
    pages = box._conn.execute("PRAGMA page_count").fetchone()[0]
    box._conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StorageError, match=r"NOT stored.*full"):
        box.put([ev(1, 200_000)])  # no image to drop, and bigger than the room the one event frees
    assert box.dropped()["storage_error"] == 1
    box.close()  # e.g. a reboot while the disk is still full

    reopened = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=64 * MIB, max_age_s=3600))
    assert reopened.dropped()["storage_error"] == 1
    reopened.put([ev(2)])  # space is back
    assert reopened.dropped()["storage_error"] == 1
    reopened.close()


def test_a_corrupt_file_is_set_aside_and_a_fresh_outbox_starts(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 200)
    box = Outbox(path, OutboxLimits(max_bytes=MIB, max_age_s=3600))
    box.put([ev(0)])
    assert box.depth().events == 1
    box.close()
    aside = list(tmp_path.glob("o.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


def test_the_file_is_in_wal_mode_with_full_sync_for_writes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=MIB, max_age_s=3600))
    assert box._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    box.close()
    check = sqlite3.connect(tmp_path / "o.sqlite3")
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()


def test_an_outbox_file_of_the_first_layout_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)  # the first layout: no key, no outbox clock, no send state
    event = b'{"event_id": "6815D01C-B47B-58D9-AEE1-4A7C6027A361", "device_id": "box"}'
    sha = "ab" * 32
    old.executemany(
        "INSERT INTO messages (kind, topic, payload, size, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            ("evidence", f"streetwatch/v1/box/evidence/{sha}", b"jpeg", 4, 1.0),
            ("event", "streetwatch/v1/box/events", event, len(event), 1.0),
            ("event", "streetwatch/v1/box/events", b"not json", 8, 1.0),
        ],
    )
    old.execute("INSERT INTO counters (name, value) VALUES ('evidence_size_limit', 3)")
    old.commit()
    old.close()

    box = Outbox(path, OutboxLimits(max_bytes=MIB, max_age_s=3600))
    assert box._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert box.depth().events == 2 and box.dropped() == {"evidence_size_limit": 3}
    reader = box.reader()
    assert [r.key for r in reader.after(0, 10)] == [sha, "6815d01c-b47b-58d9-aee1-4a7c6027a361", None]
    removed = reader.apply(Changes(stored_keys=["6815d01c-b47b-58d9-aee1-4a7c6027a361", sha]))
    assert removed == 2
    assert [r.payload for r in reader.after(0, 10)] == [b"not json"]  # no key: its PUBACK will end it
    reader.close()
    box.close()
    again = Outbox(path, OutboxLimits(max_bytes=MIB, max_age_s=3600))  # upgrading twice is a no-op
    assert again.depth().events == 1
    again.close()
