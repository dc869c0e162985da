"""The orphan-evidence quota inside one batch (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Evidence, Rejection
from server.evidence_store import EvidenceStore
from server.ingest.process import IngestBatch
from server.settings import IngestLimits, ServerSettings
from streetwatch.events import utcnow
from tests.server.test_ingest_worker import jpeg


def test_a_refused_image_leaves_no_file_even_when_an_earlier_delivery_wrote_it(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = ServerSettings(evidence_dir=str(tmp_path), limits=IngestLimits(max_orphan_evidence=1))
    store = EvidenceStore(tmp_path)
    first, other = store.put(jpeg(1)), store.put(jpeg(3))
    store.put(jpeg(2))  # an earlier delivery, never stored (the worker stopped before its commit)
    again = store.put(jpeg(2))  # its redelivery: the file is there, no row names it
    with sessions.begin() as session:
        batch = IngestBatch(session, settings, utcnow())
        assert batch.add_evidence(first, "van-01") is True
        assert batch.add_evidence(again, "van-01") is False
        assert batch.add_evidence(first, "van-01") is True  # a repeat of an admitted image is free
        assert batch.add_evidence(other, "van-02") is True  # another device has its own quota
        batch.finish()
    assert [(tmp_path / s.path).exists() for s in (first, again, other)] == [True, False, True]
    with sessions() as session:
        rows = sorted((e.device_id, e.sha256) for e in session.scalars(select(Evidence)))
        refused = session.get(Rejection, "evidence_quota")
        assert session.scalar(select(func.count()).select_from(Evidence)) == 2
    assert rows == sorted([("van-01", first.sha256), ("van-02", other.sha256)])
    assert refused is not None and refused.count == 1
