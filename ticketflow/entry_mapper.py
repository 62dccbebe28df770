"""The store's mapper: eventsourcing's, with the audit log's entries (one per save that
records stream events, SPEC §13) written by orjson rather than through the generic
transcoder, which builds a JSON encoder per call and looks each value's type up
(docs/performance.md).

An entry's state is its instant and two lists of text, so orjson writes the bytes the
transcoder would (no spaces, UTF-8, the instant as eventsourcing's `datetime_iso`
transcoding writes it; tests/unit/test_entry_mapper.py compares them), and it is read
back by the same mapper as any other record. The cipher and compressor, if configured,
apply to it as to every record.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic

from ticketflow.domain.audit_log import MerkleLog

ENTRY = MerkleLog.Appended
ENTRY_TOPIC = get_topic(ENTRY)


class EntryMapper(Mapper[UUID]):
    """eventsourcing's mapper, an audit-log entry mapped without the transcoder when
    the transcoder writes instants as `datetime_iso` (the default); else as any event."""

    def __init__(self, transcoder: Transcoder, compressor: Compressor | None = None,
                 cipher: Cipher | None = None) -> None:
        super().__init__(transcoder, compressor, cipher)
        self.entries_direct = isinstance(transcoder, JSONTranscoder) and \
            isinstance(transcoder.types.get(datetime), DatetimeAsISO)

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if type(domain_event) is not ENTRY or not self.entries_direct:
            return super().to_stored_event(domain_event)
        assert isinstance(domain_event, ENTRY)
        state = orjson.dumps({
            "timestamp": {"_type_": "datetime_iso", "_data_": domain_event.timestamp.isoformat()},
            "leaves": domain_event.leaves, "labels": domain_event.labels,
        })
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(originator_id=domain_event.originator_id,
                           originator_version=domain_event.originator_version,
                           topic=ENTRY_TOPIC, state=state)
