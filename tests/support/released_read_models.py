"""Read-model tables as release 0.1.0 made them, before ids were scoped by tenant: a
ticket's or session's rows keyed by its id alone, and parked events without a tenant.

Built from today's tables with the released keys: the columns, types and indexes are
otherwise the same (checked against that release's `projections/db.py` when written).
"""

from __future__ import annotations

from sqlalchemy import Column, Engine, Index, MetaData, Table

from ticketflow.projections.db import tables

#: The released primary key of each table whose key now starts with the tenant.
RELEASED_KEYS = {
    "rm_tickets": ("ticket_id",),
    "rm_satisfaction": ("ticket_id", "version"),
    "rm_self_service": ("session_id",),
    "rm_articles": ("ticket_id", "version"),
    "rm_parked": ("ticket_id", "version"),
    "rm_timeline": ("ticket_id", "version"),
    "rm_sla_clocks": ("ticket_id", "clock"),
}


#: Tables that release did not have (the knowledge base's, SPEC §11; accounts' managers,
#: quality reviews and tier stints, issue 19).
NOT_RELEASED = ("rm_kb_articles", "rm_kb_exposures", "rm_ticket_terms", "rm_accounts",
                "rm_reviews", "rm_tier_stints")


def released_tables() -> MetaData:
    metadata = MetaData()
    for name, table in tables().metadata.tables.items():
        if name in NOT_RELEASED:
            continue
        key = RELEASED_KEYS.get(name, tuple(c.name for c in table.primary_key.columns))
        Table(name, metadata,
              *(Column(c.name, c.type, primary_key=c.name in key,
                       nullable=c.nullable and c.name not in key) for c in table.columns
                if not (name == "rm_parked" and c.name == "tenant")),
              *(Index(index.name, *(c.name for c in index.columns)) for index in table.indexes))
    return metadata


def create_released_read_models(engine: Engine) -> None:
    released_tables().create_all(engine)
