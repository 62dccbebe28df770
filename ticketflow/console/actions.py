"""What a key may do on a ticket from the console, and the command a form sends.

Nothing here decides: the commands offered are read from the command registry
(`ticketflow.domain.commands.COMMANDS`: each entry's SPEC §3 row, the states it is
allowed from and the roles that may send it), a form's fields from the entry's payload
model (its JSON Schema, the wire contract), and the command a form posts is handed to
`TicketingApp.apply` with the key as its bounds, which judges it like any other.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticketflow.domain.commands import COMMANDS, CommandType
from ticketflow.domain.lifecycle import Role, Status
from ticketflow.keys import Key

#: A message id a console form carries (made when the form is drawn, so a form sent
#: twice is one command: the second is a duplicate).
MESSAGE_ID = re.compile(r"^console-[0-9a-f]{32}$")
LONG_TEXT = 500  # characters: a field allowing more is a text area


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | long_text | integer | choice | instant | json
    required: bool
    choices: tuple[str, ...] = ()
    default: str = ""
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Action:
    """A command the key may send to the ticket in its state, as the role it sends."""

    command: str
    role: str
    fields: tuple[Field, ...]
    message_id: str

    @property
    def label(self) -> str:
        return self.command.replace("_", " ").capitalize()


def actions(status: str, key: Key) -> list[Action]:
    """The commands the lifecycle table allows one of the key's roles from `status`
    (in the registry's order, SPEC §3), each as the first such role of the key."""
    found = []
    for command in COMMANDS.values():
        if command.creates or command.stream != "ticket":
            continue
        if Status(status) not in command.allowed_from:
            continue
        role = next((r for r in key.roles if Role(r) in command.roles), None)
        if role is not None:
            found.append(Action(command.name, role, fields_of(command),
                                "console-" + secrets.token_hex(16)))
    return found


def fields_of(command: CommandType[Any]) -> tuple[Field, ...]:
    schema = command.payload.model_json_schema()
    required = set(schema.get("required", ()))
    return tuple(_field(name, spec, name in required)
                 for name, spec in schema.get("properties", {}).items())


def _field(name: str, spec: dict[str, Any], required: bool) -> Field:
    options = [spec, *spec.get("anyOf", ())]
    kinds = {o.get("type") for o in options}
    default = spec.get("default")
    shown = "" if default is None else str(default)
    enum = next((o["enum"] for o in options if "enum" in o), None)
    if enum is not None:
        return Field(name, "choice", required, tuple(str(v) for v in enum), shown)
    if "integer" in kinds:
        bounds = next(o for o in options if o.get("type") == "integer")
        return Field(name, "integer", required, (), shown, bounds.get("minimum"),
                     bounds.get("maximum"))
    if any(o.get("format") == "date-time" for o in options):
        return Field(name, "instant", required, (), shown)
    if "object" in kinds:  # a review's rubric marks: written as a JSON object
        return Field(name, "json", required, (), shown)
    longest = max((o.get("maxLength", 0) for o in options), default=0)
    return Field(name, "long_text" if longest > LONG_TEXT else "text", required, (), shown)


def command_bytes(command: str, ticket_id: str, key: Key, form: dict[str, str],
                  at: datetime) -> bytes:
    """The command a console form sends: the key's tenant, the key's actor (or the key
    itself, when it names none) in the role the form was drawn for, `at` as its instant,
    and the payload the form holds (a blank optional field left out)."""
    entry = COMMANDS.get(command)
    if entry is None or entry.creates:
        raise ValueError(f"no such command on a ticket: {command}")
    payload: dict[str, Any] = {}
    for field in fields_of(entry):
        value = form.get(field.name, "")
        if value == "" and not field.required:
            continue
        payload[field.name] = _typed(field, value)
    message_id = form.get("message_id", "")
    if not MESSAGE_ID.match(message_id):
        message_id = "console-" + secrets.token_hex(16)
    document = {"message_id": message_id, "type": command, "tenant": key.tenant,
                "ticket_id": ticket_id, "occurred_at": at.isoformat(),
                "actor": {"id": key.actor or key.key_id, "role": form.get("role", "")},
                "payload": payload}
    return json.dumps(document).encode()


def _typed(field: Field, value: str) -> Any:
    if field.kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value  # sent as written: the engine says what is wrong with it
    if field.kind == "json":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
