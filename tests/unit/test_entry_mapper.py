"""The audit log's entries are mapped directly (ticketflow/entry_mapper.py): the same
bytes as eventsourcing's transcoder writes, read back as the same entry, sealed by the
store's cipher when it has one."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

from eventsourcing.application import Application
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import JSONTranscoder, Mapper
from eventsourcing.utils import Environment
from hypothesis import given
from hypothesis import strategies as st

from ticketflow.domain.audit_log import MerkleLog
from ticketflow.entry_mapper import EntryMapper

INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))


def transcoder() -> JSONTranscoder:
    """eventsourcing's transcoder with its default transcodings, as an application has."""
    found = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).construct_transcoder()
    assert isinstance(found, JSONTranscoder)
    return found


@given(INSTANTS, st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), max_size=5),
       st.lists(st.text(), max_size=5))
def test_an_entry_is_written_as_the_transcoder_writes_it_and_read_back_alike(
        at: datetime, leaves: list[str], labels: list[str]) -> None:
    entry = MerkleLog.Appended(originator_id=uuid4(), originator_version=1,  # type: ignore[call-arg]
                               timestamp=at, leaves=leaves, labels=labels)
    direct, generic = EntryMapper(transcoder()), Mapper(transcoder())
    assert direct.entries_direct
    stored = direct.to_stored_event(entry)
    assert stored == generic.to_stored_event(entry)
    assert direct.to_domain_event(stored) == entry


def test_a_sealed_stores_entries_are_encrypted_like_every_record() -> None:
    key = AESCipher.create_key(16)
    cipher = AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
    entry = MerkleLog.Appended(originator_id=uuid4(), originator_version=1,  # type: ignore[call-arg]
                               timestamp=datetime(2026, 12, 3, tzinfo=UTC),
                               leaves=[os.urandom(32).hex()], labels=["acme/T-1@1"])
    mapper = EntryMapper(transcoder(), cipher=cipher)
    stored = mapper.to_stored_event(entry)
    assert b"acme/T-1@1" not in stored.state
    assert mapper.to_domain_event(stored) == entry


def test_a_transcoder_that_writes_instants_otherwise_maps_entries_as_any_event() -> None:
    assert not EntryMapper(JSONTranscoder()).entries_direct  # no datetime transcoding
