"""The event history for analysts (SPEC §6), in bounded memory: what `ticketflow export`
(`ticketflow.cli_export`) and `GET /v1/events` write, through `Queries.export`.

Envelopes are read from the event store's notification log in recording order, one
batch of stored records at a time (`Store.stream_records`), filtered, and written
out at once, so memory does not grow with the size of the history:

- jsonl: one SPEC §5 envelope per line, exactly as stored: compact JSON, keys sorted,
  UTF-8 (non-ASCII text as is);
- csv: a header and one row per event (`COLUMNS`; `data` as compact JSON), UTF-8;
- parquet: the same columns typed (int64 versions, UTC microsecond timestamps for the
  two instants, strings otherwise); at most one batch is held as Python objects and at
  most one row group (`row_group_size` rows) as Arrow arrays.

Filters: tenant (equal), event types (by the stored topic, before decoding), and the
half-open window `since <= occurred_at < until`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from ticketflow.event_log import Store
from ticketflow.schemas.events import EVENT_DATA

__all__ = [
    "BATCH",
    "COLUMNS",
    "FORMATS",
    "ROW_GROUP_SIZE",
    "export_events",
    "known_types",
]

FORMATS = ("jsonl", "csv", "parquet")
COLUMNS = (
    "event_id", "type", "schema_version", "tenant", "ticket_id", "version", "occurred_at",
    "recorded_at", "actor_id", "actor_role", "causation_id", "hash", "data",
)
#: Stored records read from the notification log per query.
BATCH = 1000
#: Rows per Parquet row group (what the Parquet writer holds before writing).
ROW_GROUP_SIZE = 10_000

ProgressFn = Callable[[int], None]
_COMPACT = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def export_events(
    app: Store,
    out: BinaryIO,
    fmt: str,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    types: set[str] | None = None,
    progress: ProgressFn | None = None,
    batch: int = BATCH,
    row_group_size: int = ROW_GROUP_SIZE,
) -> int:
    """Write the selected events to `out` in `fmt`; returns how many were written.

    `progress`, if given, is called with the number of events written so far after each
    batch of `batch` stored records read, and once at the end.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if types is not None:
        unknown = sorted(set(types) - set(EVENT_DATA))
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; {known_types()}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{name} must carry a UTC offset")
    if batch < 1 or row_group_size < 1:
        raise ValueError("batch and row_group_size must be positive")
    envelopes = _selected(app, tenant=tenant, since=since, until=until, types=types,
                          batch=batch, progress=progress)
    if fmt == "jsonl":
        count = _write_jsonl(envelopes, out)
    elif fmt == "csv":
        count = _write_csv(envelopes, out)
    else:
        count = _write_parquet(envelopes, out, batch, row_group_size)
    out.flush()
    return count


def _selected(
    app: Store, *, tenant: str | None, since: datetime | None, until: datetime | None,
    types: set[str] | None, batch: int, progress: ProgressFn | None,
) -> Iterator[dict[str, Any]]:
    """The envelopes that pass the filters, in recording order."""
    matched = 0
    for scanned, record in enumerate(app.event_log.stream_records(batch), start=1):
        # The type is the topic's last part (as in envelope_of): skip before decoding.
        if types is None or record.topic.rsplit(".", 1)[-1] in types:
            envelope = app.event_log.envelope_of(record)
            if _wanted(envelope, tenant, since, until):
                matched += 1
                yield envelope
        if progress is not None and scanned % batch == 0:
            progress(matched)
    if progress is not None:
        progress(matched)


def _wanted(
    envelope: dict[str, Any], tenant: str | None, since: datetime | None,
    until: datetime | None,
) -> bool:
    if tenant is not None and envelope["tenant"] != tenant:
        return False
    if since is None and until is None:
        return True
    at = _instant_of(envelope["occurred_at"])
    return (since is None or since <= at) and (until is None or at < until)


def _instant_of(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- writers ----------------------------------------------------------------------------


def _write_jsonl(envelopes: Iterator[dict[str, Any]], out: BinaryIO) -> int:
    count = 0
    for envelope in envelopes:
        out.write((_COMPACT.encode(envelope) + "\n").encode("utf-8"))
        count += 1
    return count


def _row(envelope: dict[str, Any]) -> list[Any]:
    """One event in `COLUMNS` order; instants as stored (UTC ISO-8601 strings)."""
    actor = envelope.get("actor") or {}
    return [
        envelope["event_id"], envelope["type"], envelope["schema_version"], envelope["tenant"],
        envelope["ticket_id"], envelope["version"], envelope["occurred_at"],
        envelope["recorded_at"], actor.get("id"), actor.get("role"), envelope["causation_id"],
        envelope["hash"], _COMPACT.encode(envelope["data"]),
    ]


def _write_csv(envelopes: Iterator[dict[str, Any]], out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        count = 0
        for envelope in envelopes:
            writer.writerow(_row(envelope))
            count += 1
        text.flush()
    finally:
        text.detach()  # leave `out` open: it is the caller's
    return count


def _write_parquet(
    envelopes: Iterator[dict[str, Any]], out: BinaryIO, batch: int, row_group_size: int
) -> int:
    import pyarrow as pa  # noqa: PLC0415 - heavy, and only this format needs it
    import pyarrow.parquet as pq  # noqa: PLC0415

    instant = pa.timestamp("us", tz="UTC")
    types = {"schema_version": pa.int64(), "version": pa.int64(), "occurred_at": instant,
             "recorded_at": instant}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
    converters: dict[int, Callable[[Any], Any]] = {
        COLUMNS.index("occurred_at"): _instant_of, COLUMNS.index("recorded_at"): _instant_of,
    }

    def record_batch(columns: list[list[Any]]) -> Any:
        arrays = [pa.array(values, type=field.type) for values, field in zip(
            columns, schema, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    count = 0
    rows = 0  # rows held as Arrow batches, not yet written
    pending: list[Any] = []
    columns: list[list[Any]] = [[] for _ in COLUMNS]
    with pq.ParquetWriter(out, schema) as writer:
        for envelope in envelopes:
            for index, value in enumerate(_row(envelope)):
                convert = converters.get(index)
                columns[index].append(convert(value) if convert else value)
            count += 1
            if len(columns[0]) == batch or rows + len(columns[0]) == row_group_size:
                pending.append(record_batch(columns))
                rows += len(columns[0])
                columns = [[] for _ in COLUMNS]
            if rows == row_group_size:
                writer.write_table(pa.Table.from_batches(pending, schema),
                                   row_group_size=row_group_size)
                pending, rows = [], 0
        if columns[0]:
            pending.append(record_batch(columns))
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema),
                               row_group_size=row_group_size)
    return count


def known_types() -> str:
    return f"known types: {', '.join(sorted(EVENT_DATA))}"
