"""The AsyncAPI 3 document of ticketflow's Kafka door, generated from the code.

Channels are the topics of `producers/topics.py` and `producers/checkpoints.py`, with
their partitions and topic configuration; message payloads are the JSON Schemas of
`schemas/json` (their `$defs` shared under `components/schemas`); keys and headers are
the ones the code writes: the signing headers of `ticketflow.keys`, the event headers of
`producers/relay.event_message`, the dead-letter headers of `consumers/commands.py`,
the checkpoint's `size`. Operations are the engine's own, consumer groups included.

Run `python -m ticketflow.tools.asyncapi` after changing any of them; a test fails while
`schemas/asyncapi.json` and the code disagree, and `scripts/asyncapi-validate.cjs`
checks it with the official parser (@asyncapi/parser).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ticketflow.consumers.commands import (
    DEAD_LETTER_HEADERS,
    TRUNCATION_HEADERS,
    consumer_config,
)
from ticketflow.consumers.projections import GROUP as PROJECTIONS_GROUP
from ticketflow.domain.errors import Code
from ticketflow.domain.receipt import KEEP_BYTES
from ticketflow.keys import KEY_ID_HEADER, SIGNATURE_HEADER
from ticketflow.producers.checkpoints import CHECKPOINTS, SIZE_HEADER
from ticketflow.producers.relay import EVENT_HEADERS, NOTIFICATION_HEADERS
from ticketflow.producers.topics import DEFAULT_PARTITIONS, Topics
from ticketflow.schemas import generate

OUTPUT = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.json"
BINDING_VERSION = "0.5.0"
DEFS = "#/$defs/"
SCHEMAS = "#/components/schemas/"
TEXT = {"type": "string"}


def document() -> dict[str, Any]:
    """The whole AsyncAPI 3.1 document."""
    topics = Topics()
    schemas = _schemas()
    events = sorted(file.removeprefix("event.").removesuffix(".json")
                    for file in generate.documents() if file.startswith("event."))
    messages = {"command": _command(), "deadLetter": _dead_letter(),
                "checkpoint": _checkpoint(), "notification": _notification(),
                **{name: _event(name) for name in events}}
    return {
        "asyncapi": "3.1.0",
        "info": _info(),
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": {
            "commands": _channel(topics.commands, {"command": "command"},
                                 "Inbound support commands (SPEC §5), keyed by ticket id"
                                 " (session or article id for theirs).",
                                 topics.specs()[topics.commands]),
            "ticketEvents": _channel(topics.ticket_events, {name: name for name in events},
                                     "Every recorded event, in per-stream order (ticket,"
                                     " session or article).",
                                     topics.specs()[topics.ticket_events]),
            "deadLetter": _channel(topics.dead_letter, {"deadLetter": "deadLetter"},
                                   "Every rejected or unreadable command, with why.",
                                   topics.specs()[topics.dead_letter]),
            "notifications": _channel(topics.notifications, {"notification": "notification"},
                                      "Notifications the policy's rules name (SPEC §10),"
                                      " keyed by ticket id.",
                                      topics.specs()[topics.notifications]),
            "checkpoints": _channel(CHECKPOINTS, {"checkpoint": "checkpoint"},
                                    "Signed checkpoints of the audit log (SPEC §13).",
                                    topics.specs()[topics.dead_letter], partitions=1),
        },
        "operations": _operations(topics, events),
        "components": {"schemas": schemas, "messages": messages,
                       "securitySchemes": _security_schemes()},
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _info() -> dict[str, Any]:
    return {
        "title": "ticketflow",
        "version": "1.0.0",
        "description": (
            "The Kafka door of ticketflow, an event-sourced support-ticket engine."
            " Generated from the code by `python -m ticketflow.tools.asyncapi`;"
            " docs/kafka.md explains the guarantees. Topic names may carry a prefix"
            " (TICKETFLOW_TOPIC_PREFIX, e.g. `staging.support.commands`)."),
    }


def _servers() -> dict[str, Any]:
    return {
        "local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                  "description": "`ticketflow kafka start`: PLAINTEXT, no ACLs."},
        "localSasl": {"host": "127.0.0.1:9092", "protocol": "kafka",
                      "description": "`ticketflow kafka start --sasl-users FILE`:"
                                     " SASL_PLAINTEXT (PLAIN), ACLs enforced.",
                      "security": [{"$ref": "#/components/securitySchemes/plain"}]},
        "production": {"host": "kafka:9093", "protocol": "kafka-secure",
                       "description": "A real cluster: SASL_SSL, ACLs per principal"
                                      " (docs/security.md).",
                       "security": [{"$ref": "#/components/securitySchemes/scramSha512"}]},
    }


def _security_schemes() -> dict[str, Any]:
    return {"plain": {"type": "plain", "description": "SASL/PLAIN"},
            "scramSha512": {"type": "scramSha512", "description": "SASL/SCRAM-SHA-512"}}


def _channel(address: str, messages: dict[str, str], description: str,
             config: dict[str, str], partitions: int = DEFAULT_PARTITIONS) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {name: {"$ref": f"#/components/messages/{ref}"}
                     for name, ref in messages.items()},
        "bindings": {"kafka": {"bindingVersion": BINDING_VERSION, "topic": address,
                               "partitions": partitions, "topicConfiguration":
                               _topic_configuration(config)}},
    }


def _topic_configuration(config: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {"cleanup.policy": config["cleanup.policy"].split(",")}
    for name in ("retention.ms", "retention.bytes"):
        if name in config:
            typed[name] = int(config[name])
    return typed


def _operations(topics: Topics, events: list[str]) -> dict[str, Any]:
    def operation(action: str, channel: str, messages: list[str], summary: str,
                  group: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "action": action, "summary": summary,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages]}
        if group is not None:
            found["bindings"] = {"kafka": {"bindingVersion": BINDING_VERSION,
                                           "groupId": {"type": "string", "const": group}}}
        return found

    return {
        "applyCommands": operation(
            "receive", "commands", ["command"],
            "The command consumer: each command applied, or dead-lettered.",
            consumer_config({}, group=topics.commands)["group_id"]),
        "publishEvents": operation("send", "ticketEvents", events,
                                   "The outbox relay: every recorded event, at least once."),
        "projectEvents": operation(
            "receive", "ticketEvents", events,
            "The projection runners: events folded into the read models.",
            f"{PROJECTIONS_GROUP}:{topics.ticket_events}"),
        "deadLetterCommands": operation("send", "deadLetter", ["deadLetter"],
                                        "Rejected commands, with their original bytes."),
        "publishNotifications": operation(
            "send", "notifications", ["notification"],
            "The outbox relay: every recorded notification, at least once (one position"
            " with the events)."),
        "publishCheckpoints": operation("send", "checkpoints", ["checkpoint"],
                                        "`ticketflow checkpoint --kafka`."),
    }


def _headers(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def _key(description: str) -> dict[str, Any]:
    return {"kafka": {"bindingVersion": BINDING_VERSION,
                      "key": {"type": "string", "description": description}}}


def _command() -> dict[str, Any]:
    return {
        "name": "command", "title": "Inbound command",
        "summary": "A SPEC §5 command: JSON, UTF-8.",
        "description": ("Signed commands (required with TICKETFLOW_REQUIRE_KEYS=1) carry the"
                        " key's id and an Ed25519 signature over the exact value bytes"
                        " (docs/kafka.md, \"Signed commands\")."),
        "contentType": "application/json",
        "payload": {"$ref": f"{SCHEMAS}command"},
        "headers": _headers(_signing_headers(), []),
        "bindings": _key("The ticket id (the session id for self-service, the article id"
                         " for the knowledge base's commands, the account id for"
                         " assign_account_manager)."),
    }


#: An event's key when its stream is not a ticket (its envelope's ticket_id names it).
EVENT_KEYS = {
    "SelfServiceRecorded": "The self-service session's id.",
    "ArticleCreated": "The article's id.", "ArticleUpdated": "The article's id.",
    "AccountManagerAssigned": "The account's id.",
}


def _event(name: str) -> dict[str, Any]:
    headers: dict[str, dict[str, Any]] = {
        "type": {**TEXT, "const": name, "description": "The event's type."},
        "schema_version": {**TEXT, "pattern": "^[0-9]+$",
                           "description": "The envelope's schema version."},
        "event_id": {**TEXT, "format": "uuid", "description": "The event's id."}}
    return {
        "name": name, "title": name,
        "summary": f"{name}: the event envelope exactly as stored (canonical JSON).",
        "contentType": "application/json",
        "payload": {"$ref": f"{SCHEMAS}event.{name}"},
        "headers": _headers({header: headers[header] for header in EVENT_HEADERS},
                            list(EVENT_HEADERS)),
        "bindings": _key(EVENT_KEYS.get(name, "The ticket id.")),
    }


def _signing_headers(note: str = "") -> dict[str, dict[str, Any]]:
    return {
        KEY_ID_HEADER: {**TEXT, "pattern": "^[A-Za-z0-9]{1,32}$",
                        "description": "The id of the key that signed the value." + note},
        SIGNATURE_HEADER: {**TEXT, "pattern": "^[A-Za-z0-9+/]{86}==$",
                           "description": "Standard base64 of the 64-byte Ed25519"
                                          " signature (RFC 8032) of the value bytes." + note},
    }


def _dead_letter() -> dict[str, Any]:
    described: dict[str, dict[str, Any]] = {
        "error_code": {**TEXT, "enum": sorted(code.value for code in Code),
                       "description": "The stable rejection code."},
        "error_message": {**TEXT, "description": "Why, for a person."},
        "message_id": {**TEXT, "description": "The command's message id; empty if it had"
                                              " none that could be read."},
        "source": {**TEXT, "pattern": "^.+/[0-9]+/[0-9]+$",
                   "description": "topic/partition/offset of the command."},
        "original_length": {**TEXT, "pattern": "^[0-9]+$",
                            "description": f"Only when the value was over {KEEP_BYTES} bytes"
                                           " and this letter keeps its head: the whole"
                                           " value's length in bytes."},
        "original_sha256": {**TEXT, "pattern": "^[0-9a-f]{64}$",
                            "description": f"Only when the value was over {KEEP_BYTES} bytes:"
                                           " the whole value's SHA-256, hex."},
    }
    return {
        "name": "deadLetter", "title": "Dead letter",
        "summary": "A rejected or unreadable command: its original bytes, untouched (the"
                   f" first {KEEP_BYTES} bytes of a longer value).",
        "contentType": "application/octet-stream",
        "payload": {**TEXT, "description": "The original value's bytes (usually, not always,"
                                           f" a command's JSON); of a value over {KEEP_BYTES}"
                                           " bytes, its head: original_length and"
                                           " original_sha256 describe the whole."},
        "headers": _headers({**{header: described[header]
                                for header in DEAD_LETTER_HEADERS + TRUNCATION_HEADERS},
                             **_signing_headers(" The command's, carried on verbatim"
                                                " when present.")},
                            list(DEAD_LETTER_HEADERS)),
        "bindings": _key("The command's original key."),
    }


def _notification() -> dict[str, Any]:
    text = {"type": "string"}
    described: dict[str, dict[str, Any]] = {
        "notification_id": {**text, "format": "uuid", "description": "Derived from the"
                            " tenant, ticket, trigger, rule and audience: the same"
                            " notification has the same id on every replay."},
        "tenant": {**text, "description": "The ticket's tenant."},
        "rule": {**text, "description": "The policy's rule that named it."},
    }
    fields = {
        **described,
        "ticket_id": {**text, "description": "The ticket it is about (also the key)."},
        "trigger": {**text, "description": "`v<version>` (an event) or `at:<due instant>`"
                                           " (a timer's regular update)."},
        "at": {**text, "format": "date-time", "description": "When it became due."},
        "audience": {**text, "enum": ["customer", "assignee", "account_manager"]},
        "recipient": {**text, "description": "Who, in the audience, it is for."},
        "channel": {**text, "description": "The channel kind the rule names."},
        "template": {**text, "description": "The policy's template it was rendered from."},
        "policy": {"type": "object", "required": ["id", "version"],
                   "properties": {"id": text, "version": text}},
        "subject": {**text, "description": "One line."},
        "text": {**text, "description": "The plain-text body."},
        "html": {**text, "description": "The HTML body (autoescaped)."},
    }
    return {
        "name": "notification", "title": "Notification",
        "summary": "One notification, rendered: only customer-visible fields reach it.",
        "contentType": "application/json",
        "payload": {"type": "object", "required": sorted(fields), "properties": fields},
        "headers": _headers({name: described[name] for name in NOTIFICATION_HEADERS},
                            list(NOTIFICATION_HEADERS)),
        "bindings": _key("The ticket id."),
    }


def _checkpoint() -> dict[str, Any]:
    return {
        "name": "checkpoint", "title": "Signed checkpoint",
        "summary": "The audit log's signed tree head, as text (docs/security.md).",
        "contentType": "text/plain",
        "payload": {**TEXT, "description": "Five lines (size, root, time, key, …) and a"
                                           " signature line."},
        "headers": _headers({SIZE_HEADER: {**TEXT, "pattern": "^[0-9]+$",
                                           "description": "The tree size."}}, [SIZE_HEADER]),
        "bindings": _key("The signing key's id."),
    }


def _schemas() -> dict[str, Any]:
    """schemas/json's documents by name (without `.json`), each one's `$defs` lifted to
    components/schemas: one entry per distinct definition, named as in its document, or
    prefixed with the document's name where another definition took that name first."""
    lifted: dict[str, Any] = {}
    by_content: dict[str, str] = {}
    found: dict[str, Any] = {}
    for file, doc in generate.documents().items():
        name = file.removesuffix(".json")
        defs = doc.get("$defs", {})
        renamed = {}
        for def_name, definition in defs.items():
            content = json.dumps(definition, sort_keys=True)
            target = by_content.get(content) or (
                def_name if def_name not in lifted else f"{name}.{def_name}")
            by_content[content] = renamed[def_name] = target
            lifted[target] = definition
        for def_name, target in renamed.items():
            lifted[target] = _rewritten(defs[def_name], renamed)
        found[name] = _rewritten({key: value for key, value in doc.items()
                                  if key not in ("$schema", "$defs")}, renamed)
    overlap = set(found) & set(lifted)
    if overlap:
        raise ValueError(f"schema names used twice: {sorted(overlap)}")
    return {**lifted, **found}


def _rewritten(node: Any, renamed: dict[str, str]) -> Any:
    """`#/$defs/X` references → `#/components/schemas/<renamed X>`; an OpenAPI-style
    discriminator object → AsyncAPI's (the property's name)."""
    if isinstance(node, dict):
        out = {key: _rewritten(value, renamed) for key, value in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_rewritten(item, renamed) for item in node]
    if isinstance(node, str) and node.startswith(DEFS):
        return SCHEMAS + renamed[node.removeprefix(DEFS)]
    return node


def main() -> int:
    OUTPUT.write_text(render(document()), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
