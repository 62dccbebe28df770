"""The HTTP door's application: `create_app(settings)` builds it (FastAPI): the API
under `/v1`, the operator's endpoints, and the web console under `/ui/`
(`ticketflow.console`, handed this door's services).

Every answer that is not a success is a problem (`ticketflow.http.problems`): a
rejection at its SPEC §9 status, a malformed request 400 `invalid_message` (not
FastAPI's 422, which is `policy_violation` here), an unknown route 404, a store that
does not answer 503, anything else 500 with nothing of its cause. Every request is
timed by route template and status (`ticketflow_http_request_seconds`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow import metrics
from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app
from ticketflow.clock import Clock
from ticketflow.console import ConsoleServices, console_router, mount_static
from ticketflow.console.sessions import Sessions
from ticketflow.domain.errors import AmbiguousId, Rejected
from ticketflow.http.problems import MEDIA_TYPE as PROBLEM_JSON
from ticketflow.http.problems import Problem
from ticketflow.http.rates import RateLimits
from ticketflow.http.routes import ops, v1
from ticketflow.http.service import Service
from ticketflow.keys import Keys
from ticketflow.logs import event
from ticketflow.projections.db import engine_for
from ticketflow.schemas.commands import COMMAND_ADAPTER
from ticketflow.settings import Settings

log = logging.getLogger("ticketflow.http")

TITLE = "ticketflow"
VERSION = "1"
DESCRIPTION = """The HTTP API of ticketflow (SPEC §9): commands in, tickets, timelines, SLA
clocks, reports, the event history and tamper evidence out; a tenant's webhooks for its
notifications registered (with a manager's key).

Every `/v1` request carries a key: `Authorization: Bearer <secret>` (`ticketflow keys
create`). A key bounds what its commands may say (tenant, roles, actor) and confines
what it reads to its tenant: another tenant's ticket is answered exactly like a missing
one. `/healthz`, `/readyz`, `/metrics` and this document need no key.

Errors are `application/problem+json` (RFC 9457) with the stable rejection `code`."""


def create_app(settings: Settings, *, app: TicketingApp | None = None,
               clock: Clock | None = None, rate: str | None = None,
               keys: Keys | None = None) -> FastAPI:
    """The API on the settings' store. `app`: a write service already open (its store
    is used; it is not closed with the API); `clock`: the engine's clock (default the
    settings'); `rate`: the per-key limits (default TICKETFLOW_RATE_LIMIT)."""
    clock = clock or settings.clock
    rates = RateLimits(settings.rate_limit if rate is None else rate)
    owned = app is None
    write = build_app(settings, clock) if app is None else app
    engine = engine_for(settings.db)
    door = Service(write, engine, keys or Keys(engine, clock), rates, clock,
                   private_targets=settings.webhook_private_targets)
    api = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, docs_url=None,
                  redoc_url=None, on_shutdown=[door.close if owned else engine.dispose])
    api.state.service = door
    api.include_router(v1)
    api.include_router(ops)
    _serve_the_console(api, door)
    _handle_errors(api)
    api.add_middleware(Timed)
    api.openapi = lambda: openapi_document(api)  # type: ignore[method-assign]
    return api


def _serve_the_console(api: FastAPI, door: Service) -> None:
    """The web console (SPEC §9.1) under `/ui/`, on the door's write service, read
    models and keys: its commands are written and counted as the API's are."""
    console = ConsoleServices(queries=door.queries,
                              apply=lambda raw, key: door.apply([raw], key)[0],
                              keys=door.keys, retry_parked=door.retry_parked,
                              sessions=Sessions(door.engine, door.keys, door.clock),
                              clock=door.clock)
    api.include_router(console_router(console))
    mount_static(api)


def _handle_errors(api: FastAPI) -> None:
    api.add_exception_handler(Problem, _problem)
    api.add_exception_handler(Rejected, _rejected)
    api.add_exception_handler(RequestValidationError, _invalid)
    api.add_exception_handler(HTTPException, _http)
    api.add_exception_handler(AmbiguousId, _ambiguous)
    api.add_exception_handler(PersistenceError, _unavailable)
    api.add_exception_handler(OperationalError, _unavailable)
    api.add_exception_handler(Exception, _internal)


async def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response()


async def _rejected(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Rejected)
    return Problem.of(exc).response()


async def _invalid(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    found = "; ".join(f"{'.'.join(str(part) for part in error.get('loc', ()))}:"
                      f" {error.get('msg', 'invalid')}" for error in exc.errors()[:10])
    return Problem(400, "invalid_message", found or "invalid request").response()


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return Problem(404, "not_found", "no such resource").response()
    if exc.status_code == 405:
        return Problem(405, "method_not_allowed", "this resource does not take that"
                       " method", {**(exc.headers or {}), **_allow(request)}).response()
    return Problem(exc.status_code, "invalid_message", str(exc.detail),
                   exc.headers).response()


def _allow(request: Request) -> dict[str, str]:
    """`Allow` for a path served by several routes (one per method, as FastAPI makes
    them: GET and DELETE /v1/webhooks/{id}): every method of every route of the path,
    where Starlette names the first route's only."""
    methods: set[str] = set()
    for route in (*v1.routes, *ops.routes):
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return {"Allow": ", ".join(sorted(methods))} if methods else {}


async def _ambiguous(_: Request, exc: Exception) -> Response:
    return Problem(400, "invalid_message", str(exc)).response()


async def _unavailable(request: Request, exc: Exception) -> Response:
    event(log, "store_unavailable", logging.ERROR, exc_info=True, path=request.url.path,
          cause=type(exc).__name__)
    return Problem(503, "unavailable", "the store does not answer; try again later",
                   {"Retry-After": "5"}).response()


async def _internal(request: Request, exc: Exception) -> Response:
    event(log, "request_failed", logging.ERROR, exc_info=True, path=request.url.path,
          cause=type(exc).__name__)
    return Problem(500, "internal", "the request failed; the server's log says why").response()


#: Methods timed under their own name; any other is timed as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Timed:
    """Times each request by method, route template (never the raw path: ids are the
    callers') and status, into ticketflow_http_request_seconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).observe(
                time.perf_counter() - started)


def openapi_document(api: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.1 document (cached on the app): the routes, the command schema of
    `schemas/` as the request body, and the key as a bearer security scheme."""
    if api.openapi_schema is None:
        document = get_openapi(title=api.title, version=api.version,
                               description=api.description, routes=api.routes)
        command = COMMAND_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(command.pop("$defs", {}))
        schemas["Command"] = command
        _problems_as_problem_json(document)
        api.openapi_schema = document
    return api.openapi_schema


def _problems_as_problem_json(document: dict[str, Any]) -> None:
    """A problem response is documented as its model under application/json (FastAPI's
    way); it is sent as application/problem+json only."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON in content and "application/json" in content:
                    response["content"] = {PROBLEM_JSON: content["application/json"]}
