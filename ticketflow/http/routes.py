"""The endpoints of SPEC §9: each parses, calls the write service or the query layer
for the caller's key, and sends the answer as `ticketflow … --json` prints it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from ticketflow import answers
from ticketflow.application import Outcome
from ticketflow.domain.receipt import Oversized
from ticketflow.http import bodies, models
from ticketflow.http.problems import Problem
from ticketflow.http.service import Service
from ticketflow.http.streams import streamed
from ticketflow.keys import Key
from ticketflow.projections import periods
from ticketflow.schemas.events import EVENT_DATA
from ticketflow.settings import Bound, instant
from ticketflow.settings import zone as parse_zone

#: Timeline page sizes over HTTP (the command line allows larger pages).
DEFAULT_PAGE, MAX_PAGE = 100, 1000
#: The longest window a report over HTTP covers (ten years).
MAX_REPORT_DAYS = 3660
#: The highest version or cursor a client may name (a database's 64-bit integer).
MAX_VERSION = 2**63 - 1
EXPORT_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv; charset=utf-8",
                "parquet": "application/vnd.apache.parquet"}

EventType = StrEnum("EventType", {name: name for name in sorted(EVENT_DATA)})  # type: ignore[misc]

bearer = HTTPBearer(auto_error=False, scheme_name="key",
                    description="A key's secret (`ticketflow keys create`): bounds the"
                    " caller's tenant, roles and actor")


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


def caller(request: Request,
           credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
           ) -> Key:
    """The caller's key (401 without an active one), within its rate limits (429)."""
    return service(request).caller(credentials.credentials if credentials else None)


Caller = Annotated[Key, Depends(caller)]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: these problem statuses, and 401, 429 and any other 4XX."""
    codes: tuple[int | str, ...] = (400, 401, *statuses, 429, "4XX")
    return {status: {"model": models.Problem, "content": {"application/problem+json": {}}}
            for status in codes}


def when(name: str, text: str | None) -> datetime | None:
    """An instant as the command line takes it (ISO-8601 with an offset, or a date)."""
    return None if text is None else at(name, text)


def at(name: str, text: str) -> datetime:
    try:
        return instant(text)
    except argparse.ArgumentTypeError as exc:
        raise Problem(400, "invalid_message", f"{name}: {exc}") from None


INSTANT = ("ISO-8601 with a UTC offset (2026-11-23T09:00-05:00, …Z); a bare date is 00:00"
           " UTC")
#: How the document names an instant: a date-time with its offset, or a date.
AN_INSTANT = {"anyOf": [{"type": "string", "format": "date-time"},
                        {"type": "string", "format": "date"}]}


def instant_query(description: str = INSTANT, alias: str | None = None) -> Any:
    return Query(alias=alias, description=description, json_schema_extra=AN_INSTANT)

v1 = APIRouter(prefix="/v1")
ops = APIRouter()


# -- commands ---------------------------------------------------------------------------

#: One command, or a batch: an array whose every element is answered on its own (a
#: command, or anything else, which is rejected invalid_message in its place).
COMMAND_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"$ref": "#/components/schemas/Command"},
              {"type": "array", "maxItems": bodies.MAX_BATCH, "items": {
                  "description": "a command (Command); anything else is answered rejected,"
                  " invalid_message, in its place"}}]}}}}}


@v1.post("/commands", status_code=201, response_model=None, openapi_extra=COMMAND_BODY,
         summary="Send one command, or a batch",
         responses={201: {"model": models.Outcome, "description": "accepted"},
                    200: {"model": models.Outcome | list[models.Outcome],
                          "description": "one command: a duplicate; a batch (a JSON"
                          " array): one outcome per command, in order"},
                    **problems(403, 404, 409, 413, 422)})
async def post_commands(request: Request, key: Caller) -> Response:
    """One command (SPEC §5) → 201 accepted, 200 duplicate, or a problem whose status
    is its rejection's (the SPEC §9 table). A JSON array of commands → 200 and one
    outcome per command, as `ticketflow apply` prints them, applied in one transaction.
    A request carries at most 4 MiB (413), a batch at most 1,000 commands (400)."""
    bodies.declared_length(request.headers.get("content-length"))
    body = await bodies.bounded(request.stream())
    door = service(request)
    if bodies.is_batch(body):
        raws: list[bytes | Oversized] = bodies.batch(body)
        outcomes = await run_in_threadpool(door.apply, raws, key) if raws else []
        return JSONResponse(await run_in_threadpool(_suggested, door, key, raws, outcomes))
    raw = bodies.message(body)
    [outcome] = await run_in_threadpool(door.apply, [raw], key)
    if outcome.status == "rejected" and outcome.error:
        raise Problem.of_error(outcome.error, message_id=outcome.message_id,
                               ticket_id=outcome.ticket_id)
    [answer] = await run_in_threadpool(_suggested, door, key, [raw], [outcome])
    if outcome.status == "duplicate":
        return JSONResponse(answer)
    location = f"/v1/outcomes/{quote(outcome.message_id or '', safe='')}"
    return JSONResponse(answer, 201, headers={"Location": location})


def _suggested(door: Service, key: Key, raws: list[bytes | Oversized],
               outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The outcomes as `ticketflow apply` prints them: an accepted create_ticket's with
    its tenant's articles suggested for it (SPEC §11), from the door's read models."""
    return door.queries(key).with_suggestions(raws, [outcome.as_dict()
                                                     for outcome in outcomes])


# -- one ticket -------------------------------------------------------------------------


@v1.get("/tickets/{ticket_id}", response_model=models.TicketState, responses=problems(404))
def get_ticket(request: Request, key: Caller, ticket_id: str,
               as_of: Annotated[str | None, instant_query()] = None) -> Response:
    """The ticket's state (as `ticketflow ticket --json`): now, from the event store, or
    as of an instant, folded from its timeline. Another tenant's ticket is not_found."""
    at = when("as_of", as_of)
    queries = service(request).queries(key)
    ticket, _ = queries.ticket(ticket_id, at)
    return JSONResponse(answers.ticket_state(ticket, at, queries.account(ticket)))


@v1.get("/tickets/{ticket_id}/timeline", response_model=models.TimelinePage,
        responses=problems(404))
def get_timeline(
    request: Request, key: Caller, ticket_id: str,
    after: Annotated[int, Query(ge=0, le=MAX_VERSION, description="the version after which"
                                " the page starts: the previous page's `next`")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="events per page")]
        = DEFAULT_PAGE,
) -> Response:
    """The ticket's events as recorded, with their hashes, a page at a time: `next` is
    the last version given (pass it as `after`), null after the last event. Versions
    never change, so a cursor stays valid, and exact, while the ticket grows."""
    page, _ = service(request).queries(key).timeline(ticket_id, after, limit)
    headers = {}
    if page.next is not None:
        headers["Link"] = (f'</v1/tickets/{quote(ticket_id, safe="")}/timeline?after='
                           f'{page.next}&limit={limit}>; rel="next"')
    return JSONResponse(page.as_dict(), headers=headers)


@v1.get("/tickets/{ticket_id}/sla", response_model=models.Sla, responses=problems(404))
def get_sla(request: Request, key: Caller, ticket_id: str,
            as_of: Annotated[str | None, instant_query(INSTANT + "; default: now")] = None,
            explain: bool = False) -> Response:
    """Both SLA clocks (as `ticketflow sla --json`); `explain=true` adds each clock's
    ledger of intervals, counted or not and why."""
    found = service(request).queries(key).sla(ticket_id, when("as_of", as_of), explain)
    return JSONResponse(found)


@v1.get("/outcomes/{message_id}", response_model=models.MessageOutcome,
        responses=problems(404))
def get_outcome(request: Request, key: Caller, message_id: str) -> Response:
    """What became of a message (as `ticketflow outcome --json`)."""
    return JSONResponse(answers.outcome(service(request).queries(key).outcome(message_id)))


# -- reports ----------------------------------------------------------------------------

LOCAL = ("ISO-8601 with a UTC offset (2026-11-23T09:00-05:00, …Z); a bare date is its"
         " midnight in `timezone`")
Since = Annotated[str, instant_query(LOCAL, alias="from")]
Until = Annotated[str, instant_query("excluded; " + LOCAL, alias="to")]
PERIODS = "day, week (from Monday), month, quarter or year, named by its first day"
By = Annotated[Literal["day", "week", "month", "quarter", "year"],
               Query(description="the period of a row: " + PERIODS)]
ByToo = Annotated[Literal["day", "week", "month", "quarter", "year"] | None,
                  Query(description="by period too: " + PERIODS)]
Timezone = Annotated[str, Query(max_length=64, description="the IANA zone of the periods"
                                " and of a bare date's midnight (default UTC)")]
#: The most periods a report that is computed once per period (`by` on sla, times,
#: topics, articles) covers: each is a query of its own.
MAX_PERIODS = 1000


ByAccount = Annotated[Literal["account"] | None,
                      Query(description="by tenant × account (and its current manager)"
                            " instead of plan × priority")]


@v1.get("/reports/sla", response_model=models.SlaReport, responses=problems())
def report_sla(request: Request, key: Caller, since: Since, until: Until,
               as_of: Annotated[str | None, instant_query()] = None, by: ByToo = None,
               timezone: Timezone = "UTC", group: ByAccount = None) -> Response:
    """SLA compliance by plan × priority (or account) for clocks due in [from, to), as of
    `as_of` (default: `to`, or now if earlier); with `by`, by period of the due instant
    too (in `timezone`), as `ticketflow report sla --by`."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone, by)
    return JSONResponse(service(request).queries(key).report_sla(
        start.at(zone), end.at(zone), when("as_of", as_of), by=by, zone=zone, group=group))


@v1.get("/reports/volume", response_model=models.VolumeReport, responses=problems())
def report_volume(request: Request, key: Caller, since: Since, until: Until,
                  by: By = "week", timezone: Timezone = "UTC") -> Response:
    """Created, resolved, closed, backlog and resolution rate by period × category ×
    channel × priority; periods of `timezone` (counted by instant in a zone other than
    UTC)."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone)
    return JSONResponse(service(request).queries(key).report_volume(
        start.date_in(zone), end.date_in(zone), by, zone))


@v1.get("/reports/satisfaction", response_model=models.SatisfactionReport,
        responses=problems())
def report_satisfaction(request: Request, key: Caller, since: Since, until: Until,
                        by: By = "week", timezone: Timezone = "UTC") -> Response:
    """CSAT, mean score and NPS by period × plan; self-service success by period."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone)
    return JSONResponse(service(request).queries(key).report_satisfaction(
        start.date_in(zone), end.date_in(zone), by, zone))


@v1.get("/reports/times", response_model=models.TimesReport, responses=problems())
def report_times(request: Request, key: Caller, since: Since, until: Until,
                 by: ByToo = None, timezone: Timezone = "UTC",
                 group: ByAccount = None) -> Response:
    """Mean, p50 and p90 counted minutes to first response and to resolution, by plan ×
    priority (or account); with `by`, by period of the met instant too."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone, by)
    return JSONResponse(service(request).queries(key).report_times(
        start.at(zone), end.at(zone), by, zone, group=group))


@v1.get("/reports/quality", response_model=models.QualityReport, responses=problems())
def report_quality(request: Request, key: Caller, since: Since, until: Until,
                   by: ByToo = None, timezone: Timezone = "UTC",
                   group: Annotated[Literal["tier", "agent"] | None, Query(
                       description="by the tier (level) or agent (assignee) at"
                                   " resolution")] = None) -> Response:
    """Response quality (`ticketflow report quality --json`): the reviews made in
    [from, to), each ticket's latest in a period counted: reviews, mean score and pass
    rate per rubric item, by tenant (× tier or agent); with `by`, by period too."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone, by)
    return JSONResponse(service(request).queries(key).report_quality(
        start.at(zone), end.at(zone), by, zone, group=group))


@v1.get("/reports/topics", response_model=models.TopicsReport, responses=problems())
def report_topics(request: Request, key: Caller, since: Since, until: Until,
                  by: ByToo = None, timezone: Timezone = "UTC") -> Response:
    """Recurring ticket topics (category × subcategory, and words of the subjects) with
    their trend against the window before, flagged `candidate` when no article covers
    them (SPEC §11; `ticketflow report topics`)."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone, by)
    return JSONResponse(service(request).queries(key).report_topics(
        start.date_in(zone), end.date_in(zone), by, zone))


@v1.get("/reports/articles", response_model=models.ArticlesReport, responses=problems())
def report_articles(request: Request, key: Caller, since: Since, until: Until,
                    by: ByToo = None, timezone: Timezone = "UTC") -> Response:
    """Each knowledge-base article's effect: self-service sessions that showed or opened
    it, deflections, links from tickets, CSAT of those tickets (`ticketflow report
    articles`)."""
    zone = _zone(timezone)
    start, end = _window(since, until, zone, by)
    return JSONResponse(service(request).queries(key).report_articles(
        start.date_in(zone), end.date_in(zone), by, zone))


@v1.get("/reports/review", response_model=models.Review, responses=problems())
def report_review(
    request: Request, key: Caller,
    quarter: Annotated[str | None, Query(max_length=16, description="e.g. 2026Q4: the"
                                         " quarter by month")] = None,
    year: Annotated[str | None, Query(max_length=16, description="e.g. 2026: the year by"
                                      " quarter")] = None,
) -> Response:
    """The service review (SPEC §12, `ticketflow report review --json`) of a quarter or
    a year, in UTC: name exactly one of `quarter` and `year`."""
    if (quarter is None) == (year is None):
        raise Problem(400, "invalid_message", "name exactly one of quarter (2026Q4) and"
                      " year (2026)")
    try:
        name, (start, end), by = ((quarter, periods.quarter(quarter), "month")
                                  if quarter is not None
                                  else (str(year), periods.year(str(year)), "quarter"))
    except ValueError as exc:
        raise Problem(400, "invalid_message", str(exc)) from None
    return JSONResponse(service(request).queries(key).review(name, start, end, by))


def _zone(name: str) -> tzinfo:
    try:
        return parse_zone(name)
    except argparse.ArgumentTypeError as exc:
        raise Problem(400, "invalid_message", f"timezone: {exc}") from None


def _window(since: str, until: str, zone: tzinfo = UTC,
            by: str | None = None) -> tuple[Bound, Bound]:
    """A report's window, at most `MAX_REPORT_DAYS` long (a report is computed whole,
    per day of its window, so an unbounded one would hold a worker for hours) and, cut
    `by` period, at most `MAX_PERIODS` periods."""
    start, end = bound("from", since), bound("to", until)
    low, high = start.at(zone), end.at(zone)
    if (high - low).days > MAX_REPORT_DAYS:
        raise Problem(400, "invalid_message", f"a report covers at most {MAX_REPORT_DAYS}"
                      " days (from → to); ask for several")
    if by is not None and low < high and len(periods.windows(low, high, by, zone)) \
            > MAX_PERIODS:
        raise Problem(400, "invalid_message", f"a report by {by} covers at most"
                      f" {MAX_PERIODS} periods; ask for a longer period or several reports")
    return start, end


def bound(name: str, text: str) -> Bound:
    try:
        return Bound.parse(text)
    except argparse.ArgumentTypeError as exc:
        raise Problem(400, "invalid_message", f"{name}: {exc}") from None


# -- the knowledge base (SPEC §11) --------------------------------------------------------

#: The longest text a suggestion is asked for (the search reads the first 4,000
#: characters' words: docs/decisions.md, "Knowledge base").
MAX_SUGGEST = 4000


@v1.get("/articles/suggest", response_model=models.Suggestions, responses=problems())
def suggest(request: Request, key: Caller,
            q: Annotated[str, Query(min_length=1, max_length=MAX_SUGGEST,
                                    description="what the user wrote: plain words, never"
                                    " search syntax")]) -> Response:
    """Up to 5 of the key's tenant's knowledge-base articles for a user's text, best
    first (`ticketflow suggest --json`): the widget asks before a ticket is created.
    Only the key's tenant's articles are searched."""
    return JSONResponse(service(request).queries(key).suggest(q))


# -- the event history, tamper evidence -------------------------------------------------


@v1.get("/events", response_class=StreamingResponse, responses={
    200: {"description": "the events, in recording order",
          "content": {media: {"schema": {"type": "string", "format": "binary"}}
                      for media in EXPORT_TYPES.values()}}, **problems()})
def get_events(
    request: Request, key: Caller,
    format: Literal["jsonl", "csv", "parquet"] = "jsonl",
    since: Annotated[str | None, instant_query("occurred at or after; " + INSTANT,
                                               "from")] = None,
    until: Annotated[str | None, instant_query("occurred before", "to")] = None,
    type: Annotated[list[EventType] | None, Query(description="only these types")]
        = None,
) -> Response:
    """The caller's tenant's events for analysts (`ticketflow export`), streamed in
    bounded memory: JSON Lines (the SPEC §5 envelopes), CSV or Parquet."""
    start, end = when("from", since), when("to", until)
    types = {str(t.value) for t in type} if type else None
    queries = service(request).queries(key)
    chunks = streamed(lambda out: queries.export(out, format, since=start, until=end,
                                                 types=types))
    return StreamingResponse(chunks, media_type=EXPORT_TYPES[format], headers={
        "Content-Disposition": f'attachment; filename="events.{format}"'})


@v1.get("/verify", response_model=models.Verification, responses=problems(404))
def get_verify(request: Request, key: Caller,
               ticket: Annotated[str | None, Query(description="one ticket (default: all"
                                                   " of the caller's tenant)")] = None,
               ) -> Response:
    """Tamper evidence (as `ticketflow verify --json`): hash chains, versions, receipts,
    and the snapshots and timeline rows served in the events' place. 200 either way:
    `ok` says whether anything is broken."""
    return JSONResponse(answers.verification(service(request).queries(key).verify(ticket)))


# -- webhooks (SPEC §10) ------------------------------------------------------------------

WEBHOOK_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": models.WebhookIn.model_json_schema()}}}}
WebhookId = Annotated[str, Path(max_length=64, description="the webhook's id (wh…)")]
#: An answer holding a webhook's secret is never kept by a cache on the way.
NO_STORE = {"Cache-Control": "no-store"}


@v1.post("/webhooks", status_code=201, response_model=models.WebhookCreated,
         openapi_extra=WEBHOOK_BODY, summary="Register a webhook",
         responses=problems(403, 413, 422))
async def post_webhook(request: Request, key: Caller) -> Response:
    """Register a URL for the key's tenant's notifications (a key with the role
    `manager`; else 403). The answer holds the webhook's secret, shown this once: every
    delivery is signed with it (docs/notifications.md). The URL must be http(s) on a
    public address (400); `rules` must be rules of the tenant's policy (422)."""
    bodies.declared_length(request.headers.get("content-length"))
    body = await bodies.bounded(request.stream())
    try:
        wanted = models.WebhookIn.model_validate_json(body)
    except ValidationError as exc:
        found = "; ".join(f"{'.'.join(str(part) for part in error['loc']) or 'body'}:"
                          f" {error['msg']}" for error in exc.errors()[:10])
        raise Problem(400, "invalid_message", found) from None
    webhook, secret = await run_in_threadpool(service(request).add_webhook, key,
                                              wanted.url, wanted.rules)
    location = f"/v1/webhooks/{quote(webhook.webhook_id, safe='')}"
    return JSONResponse({**webhook.as_dict(), "secret": secret}, 201,
                        headers={"Location": location, **NO_STORE})


@v1.get("/webhooks", response_model=models.WebhookList, responses=problems(403))
def get_webhooks(request: Request, key: Caller) -> Response:
    """The key's tenant's webhooks (a `manager` key), oldest first, never a secret."""
    found = service(request).list_webhooks(key)
    return JSONResponse({"webhooks": [webhook.as_dict() for webhook in found]})


@v1.get("/webhooks/{webhook_id}", response_model=models.Webhook, responses=problems(403, 404))
def get_webhook(request: Request, key: Caller, webhook_id: WebhookId) -> Response:
    """One of the key's tenant's webhooks; another tenant's is answered exactly like a
    missing one (404)."""
    return JSONResponse(service(request).get_webhook(key, webhook_id).as_dict())


@v1.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response,
           responses={204: {"description": "removed: nothing more is delivered to it"},
                      **problems(403, 404)})
def delete_webhook(request: Request, key: Caller, webhook_id: WebhookId) -> Response:
    """Remove a webhook of the key's tenant: nothing more is delivered to it and its
    pending deliveries die (its delivery log stays). Another tenant's is 404."""
    service(request).remove_webhook(key, webhook_id)
    return Response(status_code=204)


@v1.get("/webhooks/{webhook_id}/deliveries", response_model=models.Deliveries,
        responses=problems(403, 404))
def get_deliveries(
    request: Request, key: Caller, webhook_id: WebhookId,
    status: Annotated[Literal["pending", "delivered", "dead"] | None,
                      Query(description="only these (dead: the dead letters)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Response:
    """A webhook's delivery log (SPEC §10), newest notifications first, as `ticketflow
    webhooks deliveries --json`; a removed webhook's too (its log stays). Another
    tenant's webhook is 404."""
    found = service(request).deliveries(key, webhook_id, status, limit)
    return JSONResponse({"deliveries": found})


NotificationId = Annotated[str, Path(max_length=64, description="the notification's id")]


@v1.post("/webhooks/{webhook_id}/deliveries/{notification_id}/resend", status_code=202,
         response_class=Response,
         responses={202: {"description": "due again: delivered from the next step on"},
                    **problems(403, 404)})
def post_resend(request: Request, key: Caller, webhook_id: WebhookId,
                notification_id: NotificationId) -> Response:
    """Deliver a notification to a webhook again (a dead letter, or a delivered one), as
    `ticketflow webhooks resend`. A removed webhook, another tenant's, or a notification
    never due to it is 404."""
    service(request).resend(key, webhook_id, notification_id)
    return Response(status_code=202)


# -- operations (no key) ----------------------------------------------------------------


@ops.get("/healthz", response_model=models.Health)
def healthz() -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


@ops.get("/readyz", response_model=models.Health, responses={
    503: {"model": models.Problem, "content": {"application/problem+json": {}}}})
def readyz(request: Request) -> Response:
    """Readiness: the store answers a query."""
    try:
        service(request).ready()
    except Exception as exc:
        raise Problem(503, "unavailable", f"the store does not answer"
                      f" ({type(exc).__name__})") from None
    return JSONResponse({"status": "ok"})


@ops.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}},
          "description": "Prometheus text format"}})
def get_metrics() -> Response:
    """Prometheus metrics: commands by outcome and code, request latency by route
    and status, and the roles' lag when `serve` runs them (docs/operations.md)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
