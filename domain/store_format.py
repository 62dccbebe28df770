"""The store's format mark: written once, into an empty store, by a release that scopes
ticket, session and message ids by tenant.

A store without it that already holds events was written by the release before, which
kept every stream under its bare id. Those streams stay where they are (events are
immutable and hash-chained; moving them would rewrite history): the application looks
a tenant's stream up under its scoped id first and then under the old one, and takes
the old one only if its events name that tenant (`TicketingApp.legacy_ids`).
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from ticketflow.domain.streams import unscoped_uuid

STORE_FORMAT_ID = unscoped_uuid("store", "format")
#: 2: ids scoped by tenant (the release before had no mark, and bare ids).
SCOPED_IDS = 2


class StoreFormat(Aggregate):
    class Marked(Aggregate.Created):
        format: int

    def __init__(self, format: int) -> None:
        self.format = format

    @classmethod
    def mark(cls, at: datetime) -> StoreFormat:
        return cls._create(cls.Marked, id=STORE_FORMAT_ID, timestamp=at, format=SCOPED_IDS)
