"""The value types of the wire contract: ids, instants, zones, bounded text.

Command payloads (`ticketflow.domain.commands`) and the command envelope
(`ticketflow.schemas.commands`) are built from these, so an id or an instant is read
by one rule wherever it appears.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from ticketflow.domain.policy import iana_zone
from ticketflow.schemas.characters import id_problem

#: Instants a command may carry: anything outside is a typo or garbage, and keeps the
#: calendar maths (due instants days or years later) far from datetime's limits.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso_instant(value: Any) -> Any:
    """Only ISO-8601 text (or a datetime): pydantic would also read 1700000000 or
    "1700000000" as a Unix time, an instant without a written offset."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("an instant is ISO-8601 text with a UTC offset, e.g."
                         " 2026-11-20T14:03:00-05:00")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{clip(value)} is not an ISO-8601 instant, e.g."
                         " 2026-11-20T14:03:00-05:00") from None


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{value.isoformat()} is outside the years {EARLIEST.year}–"
                         f"{LATEST.year - 1} a command may carry")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant), AfterValidator(_in_range)]


def _plain_id(value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


#: What the JSON Schema can say of an id's characters (ECMA-262 syntax): no control
#: characters, no common invisible, bidi or non-ASCII space characters, no space at
#: either end. The engine checks the whole rule (`id_problem`), NFC included.
_NOT_IN_ID = (r"\x00-\x1f\x7f-\x9f\u00a0\u00ad\u061c\u1680\u180e\u2000-\u200f"
              r"\u2028-\u202f\u205f-\u206f\u3000\ufeff")
ID_PATTERN = rf"^[^ {_NOT_IN_ID}](?:[^{_NOT_IN_ID}]*[^ {_NOT_IN_ID}])?$"
ID_MAX = 200
#: A ticket or session id leaves room for the ids the engine derives from it: the
#: timer's message id `timer:<ticket>:<rule>:<due instant>` is itself an `Id`, and a rule
#: (`breach:first_response`, `escalate:<level>`) and an instant take up to 66 more.
STREAM_ID_MAX = 128


def _id_schema(max_length: int) -> WithJsonSchema:
    return WithJsonSchema({
        "type": "string", "minLength": 1, "maxLength": max_length, "pattern": ID_PATTERN,
        "description": "An identifier, compared exactly: no control, invisible or"
        " formatting (bidi, zero-width) characters, no space but U+0020 and none at"
        " either end, in Unicode normalisation form NFC."})


Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX),
               AfterValidator(_plain_id), _id_schema(ID_MAX)]
StreamId = Annotated[str, StringConstraints(min_length=1, max_length=STREAM_ID_MAX),
                     AfterValidator(_plain_id), _id_schema(STREAM_ID_MAX)]


def _loadable_zone(name: str) -> str:
    iana_zone(name)  # 'America' is a folder of the zone database, not a zone
    return name


Zone = Annotated[Id, AfterValidator(_loadable_zone)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Text = Annotated[str, StringConstraints(max_length=20_000)]
Note = Annotated[str | None, Field(default=None, max_length=20_000)]
