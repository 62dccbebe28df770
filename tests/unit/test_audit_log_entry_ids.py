"""Audit-log entry ids (domain/audit_log.py `entry_id`): beside their first event's
stream in the store's index, and distinct for distinct first events even at one instant
(a frozen clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4, uuid5

from ticketflow.domain.audit_log import entry_id

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_an_entry_id_shares_its_streams_high_bits_and_its_first_events_low_bits() -> None:
    stream = uuid4()
    event = uuid5(stream, "1")
    found = entry_id(str(event), AT, stream)
    assert found.hex[:16] == stream.hex[:16] and found.hex[16:] == event.hex[16:]


def test_entries_at_one_instant_differ_by_their_first_event() -> None:
    stream = uuid4()
    ids = {entry_id(str(uuid5(stream, str(version))), AT, stream) for version in range(1, 500)}
    assert len(ids) == 499


def test_without_a_stream_an_entry_id_is_its_instant_then_its_first_event() -> None:
    event = uuid4()
    found = entry_id(str(event), AT)
    assert found.int >> 64 == int(AT.timestamp() * 1_000_000)
    assert found.int & (2**64 - 1) == UUID(str(event)).int & (2**64 - 1)


def test_an_event_id_written_otherwise_gives_the_same_entry_id() -> None:
    stream = uuid4()
    event = uuid5(stream, "1")
    forms = [str(event), str(event).upper(), event.hex, f"{{{event}}}", f"urn:uuid:{event}"]
    assert {entry_id(form, AT, stream) for form in forms} == {entry_id(str(event), AT, stream)}
