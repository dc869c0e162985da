"""The SQLite outbox on its own: order, size and age policy, persisted counters, disk full, corruption."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.outbox import Outbox, OutboxLimits, OutboxMessage
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
    reader.mark_attempted(rows[0].id, rows[1].id)
    reader.delete([rows[0].id, rows[2].id, 999_999])  # an unknown id (dropped meanwhile) is fine
    left = reader.after(0, 10)
    assert [r.id for r in left] == [rows[1].id, rows[3].id]
    assert left[0].attempts == 1 and left[1].attempts == 0
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


def test_age_limits_drop_old_messages_but_not_ones_with_an_unset_clock(tmp_path: Path) -> None:
    clock = Clock()
    limits = OutboxLimits(max_bytes=MIB, max_age_s=1000, evidence_max_age_s=100)
    box = Outbox(tmp_path / "o.sqlite3", limits, clock=clock)
    box.put([img(0, 10), ev(0)])
    clock.now = 100_000.0  # a box that booted in 1970 before its clock was set
    box.put([ev(1)])
    clock.now = 1_800_000_000.0 + 500
    assert box.expire() == {"evidence_age_limit": 1}
    clock.now = 1_800_000_000.0 + 1500
    assert box.expire() == {"event_age_limit": 1}
    assert box.depth().events == 1  # the 1970 event stays: its age is unknown
    assert box.dropped() == {"evidence_age_limit": 1, "event_age_limit": 1}
    box.close()


def test_full_disk_raises_a_clear_storage_error_counts_it_and_recovers(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=64 * MIB, max_age_s=3600))
    box.put([ev(0)])
    pages = box._conn.execute("PRAGMA page_count").fetchone()[0]
    box._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own "disk full"
    with pytest.raises(StorageError, match=r"NOT stored.*full"):
        for i in range(1, 100):
            box.put([img(i, 20_000), ev(i)])
    assert box.dropped()["storage_error"] == 1
    box._conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
    box.put([ev(1000)])
    assert box.dropped()["storage_error"] == 1  # now persisted
    box.close()
    reopened = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=64 * MIB, max_age_s=3600))
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
