"""The snapshot rows a process vouches for: bounded, by their bytes."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from ticketflow.snapshots import VouchedRows

STREAM = uuid4()


def row(version: int, state: bytes = b"state") -> StoredEvent:
    return StoredEvent(originator_id=STREAM, originator_version=version, topic="t",
                       state=state)


def test_a_row_is_known_by_its_stream_version_and_bytes() -> None:
    vouched = VouchedRows()
    vouched.add(row(100))
    assert row(100) in vouched
    assert row(100, b"other bytes") not in vouched  # changed behind the process's back
    assert row(200) not in vouched
    assert StoredEvent(uuid4(), 100, "t", b"state") not in vouched


def test_the_least_recently_used_row_is_forgotten_past_the_bound() -> None:
    vouched = VouchedRows(size=2)
    vouched.add(row(1))
    vouched.add(row(2))
    assert row(1) in vouched  # used: now the most recent
    vouched.add(row(3))
    assert [row(n) in vouched for n in (1, 2, 3)] == [True, False, True]
    assert len(vouched) == 2
