"""Webhook deliveries (SPEC §10) against real HTTP receivers on 127.0.0.1 that check
every signature: retried with backoff on the injectable clock until they succeed, a
dead letter after the last attempt, never a redirect followed, a delivery log and the
report by rule and outcome. Every test runs on both event-store backends (the `db_url`
fixture: a SQLite file and a real PostgreSQL)."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from eventsourcing.utils import Environment
from sqlalchemy import Engine, text

from tests.support.notifications import END, EXPECTED, done_when_story
from tests.support.receiver import Receiver, receiving
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.cipher import StoreCipher
from ticketflow.clock import SystemClock
from ticketflow.consumers.webhooks import DeliveryWorker
from ticketflow.notifications import recorded
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings
from ticketflow.webhooks import SecretKeyError, WebhookError, Webhooks, notification_report

FIRST = timedelta(seconds=10)


@dataclass
class Clock:
    """The delivery worker's clock, moved by the test (no test waits for time)."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def unix(self) -> float:
        return self.at.timestamp()


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[TicketingApp, Engine]]:
    with build_app(Settings(db=db_url), clock=SystemClock.frozen(END)) as app:
        done_when_story(app, live=True)
        engine = engine_for(db_url)
        yield app, engine
        engine.dispose()


def worker(app: TicketingApp, engine: Engine, clock: Clock, attempts: int = 4
           ) -> DeliveryWorker:
    """The delivery worker as an operator who allowed private targets runs it (every
    receiver here is on 127.0.0.1)."""
    return DeliveryWorker(app, engine, clock, max_attempts=attempts, first_delay=FIRST,
                          rng=random.Random(7), timeout=5.0, private_targets=True)


def step(deliveries: DeliveryWorker) -> int:
    """One step, and the answers of what it started recorded."""
    done = deliveries.run_once()
    return done + deliveries.drain()


def settle(deliveries: DeliveryWorker, clock: Clock, rounds: int = 12) -> None:
    for _ in range(rounds):
        step(deliveries)
        clock.at += timedelta(hours=1)  # past any backoff


def test_a_failing_endpoint_gets_every_notification_once_it_answers_and_a_dead_one_dead_letters(
        store: tuple[TicketingApp, Engine]) -> None:
    app, engine = store
    clock = Clock(END)
    hooks = Webhooks(engine, clock, private_targets=True)  # the receivers are on loopback
    with receiving(Receiver(clock.unix, fail_first=2)) as flaky, \
            receiving(Receiver(clock.unix, status=503)) as down, \
            receiving(Receiver(clock.unix)) as other_tenant:
        _, flaky.secret = hooks.add("personalysispro", flaky.url)
        dead_hook, down.secret = hooks.add("personalysispro", down.url)
        _, other_tenant.secret = hooks.add("growgrebuddy", other_tenant.url)
        deliveries = worker(app, engine, clock)
        try:
            settle(deliveries, clock)
        finally:
            deliveries.close()
    stored = {d["notification_id"]: d for d in recorded(app.event_log)}
    assert len(stored) == len(EXPECTED)
    # the flaky one: every notification, signed, after two refused attempts each
    assert flaky.accepted == stored and flaky.badly_signed == 0
    assert set(flaky.attempts.values()) == {3}
    # the dead one: four attempts each, then a dead letter with the last answer
    assert set(down.attempts.values()) == {4} and down.badly_signed == 0
    dead = hooks.deliveries(status="dead")
    assert {d["notification_id"] for d in dead} == set(stored)
    assert {(d["webhook_id"], d["attempts"], d["last_error"]) for d in dead} == {
        (dead_hook.webhook_id, 4, "Service Unavailable")}
    log = hooks.attempts(dead[0]["notification_id"], dead_hook.webhook_id)
    assert [a["status_code"] for a in log] == [503, 503, 503, 503]
    assert other_tenant.attempts == {}  # another tenant's webhook hears nothing
    # the report: by rule, and how the deliveries ended
    rows = notification_report(recorded(app.event_log), hooks.outcomes(),
                               END - timedelta(days=30), END)
    assert [(r["rule"], r["notifications"], r["delivered"], r["dead"], r["pending"])
            for r in rows] == [("escalated_first_level", 1, 1, 1, 0),
                               ("escalated_management", 2, 2, 2, 0),
                               ("management_update", 6, 6, 6, 0),
                               ("satisfaction_survey", 1, 1, 1, 0)]


def test_retries_back_off_exponentially_on_the_workers_clock(
        store: tuple[TicketingApp, Engine]) -> None:
    app, engine = store
    clock = Clock(END)
    hooks = Webhooks(engine, clock, private_targets=True)  # the receivers are on loopback
    with receiving(Receiver(clock.unix, status=503)) as down:
        hook, down.secret = hooks.add("personalysispro", down.url, ["satisfaction_survey"])
        deliveries = worker(app, engine, clock, attempts=3)
        try:
            gaps = []
            for attempt in (1, 2, 3):
                assert step(deliveries) >= 1  # due now: posted and answered
                (row,) = hooks.deliveries()
                assert row["attempts"] == attempt
                if row["status"] == "dead":
                    break
                due = datetime.fromisoformat(row["next_attempt_at"])
                gaps.append(due - clock.at)
                clock.at = due - timedelta(seconds=1)  # not yet: nothing is posted
                assert step(deliveries) == 0 and down.attempts == {
                    row["notification_id"]: attempt}
                clock.at = due
        finally:
            deliveries.close()
    # FIRST × 2^(n-1), times a jitter in [0.5, 1]
    assert FIRST / 2 <= gaps[0] <= FIRST and 2 * FIRST / 2 <= gaps[1] <= 2 * FIRST
    assert hooks.deliveries()[0]["status"] == "dead"
    assert hook.rules == ("satisfaction_survey",)


def test_a_redirect_is_never_followed(store: tuple[TicketingApp, Engine]) -> None:
    app, engine = store
    clock = Clock(END)
    hooks = Webhooks(engine, clock, private_targets=True)  # the receivers are on loopback
    with receiving(Receiver(clock.unix, status=302)) as moved:
        _, moved.secret = hooks.add("personalysispro", moved.url, ["satisfaction_survey"])
        deliveries = worker(app, engine, clock, attempts=1)
        try:
            step(deliveries)
        finally:
            deliveries.close()
    (row,) = hooks.deliveries()
    assert row["status"] == "dead"
    assert row["last_error"] == "redirect to http://elsewhere.invalid/hook not followed"


def test_a_dead_letter_can_be_sent_again(store: tuple[TicketingApp, Engine]) -> None:
    app, engine = store
    clock = Clock(END)
    hooks = Webhooks(engine, clock, private_targets=True)  # the receivers are on loopback
    with receiving(Receiver(clock.unix, status=503)) as receiver:
        hook, receiver.secret = hooks.add("personalysispro", receiver.url,
                                          ["satisfaction_survey"])
        deliveries = worker(app, engine, clock, attempts=1)
        try:
            step(deliveries)
            (row,) = hooks.deliveries(status="dead")
            receiver.status = 200  # the endpoint is back
            hooks.resend(row["notification_id"], hook.webhook_id)
            step(deliveries)
        finally:
            deliveries.close()
    assert [d["status"] for d in hooks.deliveries()] == ["delivered"]
    assert list(receiver.accepted) == [row["notification_id"]]


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd",
                                 "javascript:alert(1)", "http:///nohost", "example.com/hook",
                                 "http://exa mple.com/"])
def test_only_http_urls_are_webhooks(sqlite_url: str, url: str) -> None:
    engine = engine_for(sqlite_url)
    try:
        with pytest.raises(WebhookError):
            Webhooks(engine, Clock(END)).add("personalysispro", url)
    finally:
        engine.dispose()


def test_a_killed_delivery_worker_loses_nothing_and_doubles_nothing_after_dedupe(
        store: tuple[TicketingApp, Engine]) -> None:
    app, engine = store
    clock = Clock(END)
    hooks = Webhooks(engine, clock, private_targets=True)  # the receivers are on loopback
    with receiving(Receiver(clock.unix)) as receiver:
        _, receiver.secret = hooks.add("personalysispro", receiver.url)
        killed = worker(app, engine, clock)
        killed.run_once()  # queued and posted …
        killed.close()  # … and killed before it recorded a single answer
        assert {d["status"] for d in hooks.deliveries()} == {"pending"}
        restarted = worker(app, engine, clock)
        try:
            settle(restarted, clock, rounds=2)
        finally:
            restarted.close()
    stored = {d["notification_id"]: d for d in recorded(app.event_log)}
    assert set(receiver.attempts.values()) == {2}  # at least once: each was posted again
    assert receiver.accepted == stored  # deduped by notification id: each once
    assert {(d["status"], d["attempts"]) for d in hooks.deliveries()} == {("delivered", 1)}


# -- secrets at rest ------------------------------------------------------------------

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


def secret_cells(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT webhook_id, secret FROM ticketflow_webhooks"))
        return {row[0]: row[1] for row in rows.all()}


def test_with_a_cipher_key_the_table_holds_no_secret_and_deliveries_still_verify(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_CIPHER_KEY", KEY)
    clock = Clock(END)
    with build_app(Settings(db=db_url), clock=SystemClock.frozen(END)) as app, \
            receiving(Receiver(clock.unix)) as receiver, \
            receiving(Receiver(clock.unix)) as second:
        done_when_story(app, live=True)
        engine = engine_for(db_url)
        try:
            cipher = app.event_log.mapper.cipher
            assert cipher is not None
            hooks = Webhooks(engine, clock, cipher, private_targets=True)
            hook, receiver.secret = hooks.add("personalysispro", receiver.url,
                                              ["satisfaction_survey"])
            other, second.secret = hooks.add("personalysispro", second.url)
            cells = secret_cells(engine)
            # sealed: neither secret, nor any part of it, is in the table
            for webhook_id, secret in ((hook.webhook_id, receiver.secret),
                                       (other.webhook_id, second.secret)):
                assert cells[webhook_id].startswith("sealed:v1:")
                assert secret not in cells[webhook_id]
                assert secret.removeprefix("whsec_")[:16] not in str(cells)
            # … yet the worker signs with the real one: the receiver checks every delivery
            deliveries = worker(app, engine, clock)
            try:
                settle(deliveries, clock, rounds=2)
            finally:
                deliveries.close()
            assert len(receiver.accepted) == 1 and receiver.badly_signed == 0
            assert len(second.accepted) == len(EXPECTED) and second.badly_signed == 0
            # a sealed secret copied onto another webhook's row does not open there
            with engine.begin() as conn:
                conn.execute(text("UPDATE ticketflow_webhooks SET secret = :s"
                                  " WHERE webhook_id = :w"),
                             {"s": cells[hook.webhook_id], "w": other.webhook_id})
            with pytest.raises(SecretKeyError, match="another webhook's secret"):
                hooks.registered()
            # without the key, or with another, nothing opens (and nothing is guessed)
            with pytest.raises(SecretKeyError, match="set TICKETFLOW_CIPHER_KEY"):
                Webhooks(engine, clock).registered()
            wrong = StoreCipher(Environment(env={"CIPHER_KEY": OTHER_KEY}))
            with pytest.raises(SecretKeyError, match="cannot be opened"):
                Webhooks(engine, clock, wrong).registered()
        finally:
            engine.dispose()


def test_a_secret_kept_in_clear_before_still_signs_and_a_store_without_a_key_keeps_them_so(
        db_url: str) -> None:
    engine = engine_for(db_url)
    try:
        hooks = Webhooks(engine, Clock(END))
        hook, secret = hooks.add("personalysispro", "https://hooks.example.com/a")
        assert secret_cells(engine) == {hook.webhook_id: secret}
        sealing = Webhooks(engine, Clock(END),
                           StoreCipher(Environment(env={"CIPHER_KEY": KEY})))
        assert [w.secret for w in sealing.registered()] == [secret]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_webhooks_table_made_before_sealing_is_widened_for_sealed_secrets(
        postgres_url: str) -> None:
    engine = engine_for(postgres_url)
    try:
        with engine.begin() as conn:  # the table as the first release made it
            conn.execute(text(
                "CREATE TABLE ticketflow_webhooks (webhook_id VARCHAR(32) PRIMARY KEY,"
                " tenant VARCHAR(200) NOT NULL, url TEXT NOT NULL, secret VARCHAR(80) NOT"
                " NULL, rules TEXT NOT NULL, created_at VARCHAR(40) NOT NULL,"
                " removed_at VARCHAR(40))"))
        cipher = StoreCipher(Environment(env={"CIPHER_KEY": KEY}))
        hooks = Webhooks(engine, Clock(END), cipher)
        hook, secret = hooks.add("personalysispro", "https://hooks.example.com/a")
        assert len(secret_cells(engine)[hook.webhook_id]) > 80
        assert [w.secret for w in hooks.registered()] == [secret]
    finally:
        engine.dispose()


# -- SSRF ----------------------------------------------------------------------------------

INTERNAL = ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://api.localhost/",
            "http://10.0.0.5/hook", "http://192.168.1.1/", "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook", "http://[fe80::1]/", "http://0.0.0.0/",
            "http://100.64.0.1/", "http://224.0.0.1/"]


@pytest.mark.parametrize("url", INTERNAL)
def test_a_webhook_on_the_engines_host_or_network_is_refused_unless_an_operator_allows_it(
        sqlite_url: str, url: str) -> None:
    engine = engine_for(sqlite_url)
    try:
        with pytest.raises(WebhookError, match="not a public address"):
            Webhooks(engine, Clock(END)).add("personalysispro", url)
        allowed, _ = Webhooks(engine, Clock(END), private_targets=True).add(
            "personalysispro", url)
        assert allowed.url == url
    finally:
        engine.dispose()


def test_public_addresses_and_names_are_webhooks(sqlite_url: str) -> None:
    engine = engine_for(sqlite_url)
    try:
        hooks = Webhooks(engine, Clock(END))
        for url in ("https://hooks.example.com/a", "http://93.184.216.34/hook",
                    "https://[2606:4700::1111]/hook"):
            assert hooks.add("personalysispro", url)[0].url == url
    finally:
        engine.dispose()


def test_a_name_that_resolves_to_loopback_is_never_posted_to_unless_allowed(
        store: tuple[TicketingApp, Engine]) -> None:
    app, engine = store
    clock = Clock(END)
    with receiving(Receiver(clock.unix)) as receiver:
        # registered while allowed (or a name that pointed elsewhere then): the check at
        # delivery judges the addresses the name resolves to now
        url = receiver.url.replace("127.0.0.1", "localhost")
        _, receiver.secret = Webhooks(engine, clock, private_targets=True).add(
            "personalysispro", url, ["satisfaction_survey"])
        guarded = DeliveryWorker(app, engine, clock, max_attempts=1, timeout=5.0)
        try:
            step(guarded)
        finally:
            guarded.close()
    assert receiver.attempts == {}  # nothing reached it
    (row,) = Webhooks(engine, clock).deliveries()
    assert row["status"] == "dead"
    assert "localhost resolves to" in row["last_error"]
    assert "not a public address" in row["last_error"]
