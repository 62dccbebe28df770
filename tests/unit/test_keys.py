"""Keys (SPEC §8): a key bounds tenant, roles and actor; its secret is stored only as
its Ed25519 public key; revocation and expiry hold at once; a signed Kafka message is
checked against the key that signed it. Attacks first: a forged, truncated, oversized
or replaced secret or signature, another tenant's key, the timer's reserved identity."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.builders import T0, command_line, create_payload
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.domain.errors import Forbidden, Unauthenticated
from ticketflow.keys import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    Keys,
    Refused,
    keys_table,
    private_key_pem,
    sign,
)
from ticketflow.projections.db import engine_for
from ticketflow.schemas.commands import parse_command
from ticketflow.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(hours=1)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(tmp_path, clock: Clock) -> Keys:  # type: ignore[no-untyped-def]
    return Keys(engine_for(f"sqlite:///{tmp_path / 'keys.db'}"), clock)


@pytest.fixture
def app(clock: Clock) -> Iterator[TicketingApp]:
    with build_app(Settings(db="sqlite:///:memory:"), clock=clock) as store:
        yield store


def test_a_secret_authenticates_its_key_and_is_not_stored(keys: Keys) -> None:
    key, secret = keys.create("personalysispro", ["customer"], actor="user-42", name="widget")
    assert keys.authenticate(secret) == key
    with keys.engine.connect() as connection:
        stored = json.dumps([dict(r) for r in connection.execute(select(keys_table)).mappings()])
    assert secret not in stored and secret.rsplit("_", 1)[1] not in stored


@pytest.mark.parametrize("forged", [
    None, "", "Bearer", "tfk_", "tfk_k1_", "tfk_../../etc_AAAA", "x" * 10_000,
    "tfk_k00000000000000_" + "A" * 43,  # unknown key id
])
def test_anything_but_a_real_secret_is_unauthenticated(keys: Keys, forged: str | None) -> None:
    keys.create("personalysispro", ["agent"])
    with pytest.raises(Unauthenticated):
        keys.authenticate(forged)


def test_another_keys_seed_under_this_keys_id_is_unauthenticated(keys: Keys) -> None:
    first, _ = keys.create("personalysispro", ["agent"])
    _, other = keys.create("growgrebuddy", ["manager"])
    with pytest.raises(Unauthenticated):
        keys.authenticate(f"tfk_{first.key_id}_{other.rsplit('_', 1)[1]}")


@given(noise=st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_no_text_authenticates_by_accident(noise: str) -> None:
    keys = Keys(engine_for("sqlite://"), Clock())
    with pytest.raises(Unauthenticated):
        keys.authenticate(noise)


def test_revocation_and_expiry_hold_at_once(keys: Keys, clock: Clock) -> None:
    key, secret = keys.create("personalysispro", ["agent"],
                              expires_at=clock.now + timedelta(days=1))
    other_process = Keys(keys.engine, clock)
    assert other_process.authenticate(secret).key_id == key.key_id
    clock.now += timedelta(days=1)
    with pytest.raises(Unauthenticated, match="expired"):
        other_process.authenticate(secret)
    clock.now -= timedelta(hours=1)
    keys.revoke(key.key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        other_process.authenticate(secret)
    assert [k.as_dict(clock.now)["state"] for k in keys.list()] == ["revoked"]


def test_a_key_cannot_take_the_timers_identity_or_unknown_roles(keys: Keys) -> None:
    with pytest.raises(ValueError, match="timer"):
        keys.create("personalysispro", ["system"], actor="ticketflow-timer")
    with pytest.raises(ValueError, match="roles"):
        keys.create("personalysispro", ["root"])


def test_a_key_bounds_tenant_role_and_actor(keys: Keys) -> None:
    key, _ = keys.create("personalysispro", ["customer"], actor="user-42")
    mine = command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload(),
                        actor="user-42")
    key.admit(parse_command(mine))
    for message in (
        command_line("m-1", "create_ticket", "T-1", T0, "customer",
                     create_payload("growgrebuddy"), tenant="growgrebuddy", actor="user-42"),
        command_line("m-1", "resolve", "T-1", T0, "agent", {"resolution": "x"}, actor="user-42"),
        command_line("m-1", "add_comment", "T-1", T0, "customer", {"body": "x"}, actor="user-7"),
    ):
        with pytest.raises(Forbidden):
            key.admit(parse_command(message))


def test_a_signed_message_is_checked_against_its_key(keys: Keys) -> None:
    key, secret = keys.create("personalysispro", ["customer"])
    body = command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload())
    headers = sign(secret, body)
    assert keys.verified(headers, body) == key
    tampered = body.replace(b"Exports", b"Imports")
    forged = [(KEY_ID_HEADER, key.key_id.encode()),
              (SIGNATURE_HEADER, base64.b64encode(b"\0" * 64))]
    for bad_headers, bad_body in ((headers, tampered), (forged, body), ([], body),
                                  ([(KEY_ID_HEADER, b"\xff" * 40), headers[1]], body),
                                  ([headers[0], (SIGNATURE_HEADER, b"not base64!")], body)):
        with pytest.raises(Unauthenticated):
            keys.verified(bad_headers, bad_body)
    keys.revoke(key.key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        keys.verified(headers, body)


def test_the_pem_signs_what_the_key_verifies(keys: Keys) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key, secret = keys.create("personalysispro", ["agent"])
    private = load_pem_private_key(private_key_pem(secret), password=None)
    body = b'{"any": "bytes"}'
    signature = private.sign(body)  # type: ignore[call-arg, union-attr]
    headers = [(KEY_ID_HEADER, key.key_id.encode()),
               (SIGNATURE_HEADER, base64.b64encode(signature))]
    assert keys.verified(headers, body) == key


def test_a_command_outside_its_key_is_forbidden_kept_in_the_keys_tenant_and_uses_no_id(
    app: TicketingApp, keys: Keys,
) -> None:
    b_key, _ = keys.create("growgrebuddy", ["customer", "agent"])
    attack = command_line("m-1", "create_ticket", "T-1", T0, "customer", create_payload())
    outcome = app.apply(attack, bounds=b_key)  # names personalysispro
    assert (outcome.status, outcome.error and outcome.error["code"]) == ("rejected", "forbidden")
    assert app.event_log.receipts_of("m-1", "personalysispro") == []  # A's id stays free
    assert app.event_log.receipts_of("m-1", "growgrebuddy") == []  # kept by digest
    assert app.apply(attack).status == "accepted"  # A's own m-1, T-1 are untouched


def test_a_customer_key_cannot_resolve_and_an_agent_key_cannot_rate(
    app: TicketingApp, keys: Keys,
) -> None:
    customer, _ = keys.create("personalysispro", ["customer"])
    agent, _ = keys.create("personalysispro", ["agent"])
    assert app.apply(command_line("c", "create_ticket", "T-1", T0, "customer",
                                  create_payload()), bounds=customer).status == "accepted"
    posing = command_line("r", "resolve", "T-1", T0, "agent", {"resolution": "x"})
    assert app.apply(posing, bounds=customer).error["code"] == "forbidden"  # type: ignore[index]
    assert app.apply(posing, bounds=agent).status == "accepted"
    rating = command_line("s", "record_satisfaction", "T-1", T0, "customer", {"score": 5})
    assert app.apply(rating, bounds=agent).error["code"] == "forbidden"  # type: ignore[index]
    assert app.apply(rating, bounds=customer).status == "accepted"


def test_an_unauthenticated_message_is_refused_before_it_is_read(app: TicketingApp) -> None:
    refused = Refused(Unauthenticated("unsigned"))
    outcomes = app.apply_batch([b"not json", command_line(
        "m-1", "create_ticket", "T-1", T0, "customer", create_payload())], bounds=refused)
    assert [o.error["code"] for o in outcomes] == ["unauthenticated"] * 2  # type: ignore[index]
    assert app.apply(command_line("m-1", "create_ticket", "T-1", T0, "customer",
                                  create_payload())).status == "accepted"


def test_each_message_of_a_batch_keeps_its_own_bounds(app: TicketingApp, keys: Keys) -> None:
    customer, _ = keys.create("personalysispro", ["customer"])
    create = command_line("c", "create_ticket", "T-1", T0, "customer", create_payload())
    resolve = command_line("r", "resolve", "T-1", T0, "agent", {"resolution": "x"})
    outcomes = app.apply_batch([create, resolve, resolve], bounds=[customer, customer, None])
    assert [o.status for o in outcomes] == ["accepted", "rejected", "accepted"]
    with pytest.raises(ValueError):
        app.apply_batch([create], bounds=[customer, None])


def test_a_batch_reads_each_signing_key_once(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = keys.create("personalysispro", ["customer"])
    reads: list[str] = []
    get = keys.get
    monkeypatch.setattr(keys, "get", lambda key_id: reads.append(key_id) or get(key_id))
    read: dict[str, object] = {}
    for n in range(5):
        body = f'{{"n": {n}}}'.encode()
        assert keys.verified(sign(secret, body), body, read) == key  # type: ignore[arg-type]
    assert reads == [key.key_id]
