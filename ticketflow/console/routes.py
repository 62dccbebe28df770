"""The console's pages (SPEC §9.1), under `/ui`: sign-in, tickets, a ticket, dashboards,
operations. Server-rendered (Jinja2, every value escaped), htmx for the parts that
change in place.

Every page but sign-in needs a session (`ticketflow.console.sessions`); every read goes
through `Queries` in the session key's scope (another tenant's ticket is answered like
a missing one) and every command through `TicketingApp.apply` with the key as its
bounds. Every POST carries the session's CSRF token (a form field, or the
`X-CSRF-Token` header htmx sends) and is refused 403 without it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader

from ticketflow import render
from ticketflow.console.actions import actions, command_bytes
from ticketflow.console.dashboards import (
    PERIODS,
    Window,
    satisfaction_series,
    sla_series,
    times_dashboard,
    times_series,
    volume_series,
)
from ticketflow.console.services import ConsoleServices
from ticketflow.console.sessions import Session
from ticketflow.console.views import band, changed, instant, local
from ticketflow.console.whatif import compare, read_policy
from ticketflow.domain.errors import NotFound, Unauthenticated
from ticketflow.domain.policy import PolicyError
from ticketflow.projections.search import TicketFilter

PREFIX = "/ui"
STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "tf_session"
SIGN_IN_COOKIE = "tf_sign_in"  # the sign-in form's own CSRF token (no session yet)
CSRF_HEADER = "X-CSRF-Token"
#: The role that makes a key an operator's: it may retry its tenant's parked events.
OPERATOR_ROLE = "manager"
TIMELINE_PAGE = 50
#: The dashboards, each also on a page of its own: (path, title), and its series.
DASHBOARDS = {"sla": "SLA compliance", "volume": "Volume", "times": "Times",
              "satisfaction": "CSAT, NPS and self-service"}
SERIES = {"sla": sla_series, "volume": volume_series, "times": times_series,
          "satisfaction": satisfaction_series}
MAX_FORM_BYTES = 64 * 1024
#: Scripts and styles only from the console's own files; nothing framed, nothing sent
#: elsewhere. Inline scripts, styles and event handlers never run.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
                               " img-src 'self' data:; object-src 'none'; base-uri 'none';"
                               " frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Environment(loader=PackageLoader("ticketflow.console", "templates"),
                        autoescape=True, trim_blocks=True, lstrip_blocks=True)
templates.globals["prefix"] = PREFIX
templates.filters["json_text"] = lambda value: render.json_text(value, indent=1)


def mount_static(app: FastAPI) -> None:
    """Serve the console's static files (htmx, Chart.js, its CSS and script)."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")


async def form_of(request: Request) -> dict[str, str]:
    """A posted form (application/x-www-form-urlencoded, at most 64 KiB), the last value
    of each field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES or not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[-1] for name, values in parsed.items()}


Form = Annotated[dict[str, str], Depends(form_of)]


def is_operator(session: Session) -> bool:
    return OPERATOR_ROLE in session.key.roles


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = HTMLResponse(templates.get_template(name).render(**context), status_code=status)
    response.headers.update(HEADERS)
    return response


def console_router(services: ConsoleServices) -> APIRouter:
    """The console's routes (prefix `/ui`), on `services`."""
    console = _Console(services)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    for path, method, handler in (
            ("", "GET", console.home), ("/", "GET", console.home),
            ("/sign-in", "GET", console.sign_in_form), ("/sign-in", "POST", console.sign_in),
            ("/sign-out", "POST", console.sign_out), ("/tickets", "GET", console.tickets),
            ("/ticket", "GET", console.ticket), ("/ticket/state", "GET", console.ticket_state),
            ("/ticket/chain", "GET", console.ticket_chain),
            ("/ticket/commands", "POST", console.ticket_command),
            ("/dashboards", "GET", console.dashboards),
            ("/dashboards/{name}", "GET", console.dashboard),
            ("/dashboards/{name}/section", "GET", console.dashboard_section),
            ("/what-if", "GET", console.what_if_form), ("/what-if", "POST", console.what_if),
            ("/operations", "GET", console.operations),
            ("/operations/retry", "POST", console.retry_parked)):
        router.add_api_route(path, handler, methods=[method], response_class=HTMLResponse)
    return router


class _Console:
    """The pages' handlers, on one set of services."""

    def __init__(self, services: ConsoleServices) -> None:
        self.services = services

    def signed_in(self, request: Request) -> Session | None:
        with self.services.serial:
            return self.services.sessions.find(request.cookies.get(SESSION_COOKIE))

    def to_sign_in(self, request: Request) -> Response:
        if request.headers.get("HX-Request"):
            response = Response(status_code=401)
            response.headers["HX-Redirect"] = f"{PREFIX}/sign-in"
            return response
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)

    def csrf_refused(self, session: Session, request: Request,
                     form: dict[str, str]) -> Response | None:
        if session.csrf_ok(request.headers.get(CSRF_HEADER) or form.get("csrf")):
            return None
        return page("error.html", 403, session=session, title="Refused",
                    message="This form is missing its CSRF token, or it is not this"
                            " session's. Reload the page and try again.")

    def not_found(self, session: Session, what: str) -> HTMLResponse:
        return page("error.html", 404, session=session, title="Not found", message=what)

    # -- signing in and out -------------------------------------------------------------

    def home(self, request: Request) -> Response:
        target = "tickets" if self.signed_in(request) else "sign-in"
        return RedirectResponse(f"{PREFIX}/{target}", status_code=303)

    def sign_in_form(self, request: Request) -> Response:
        return self._sign_in_page(request)

    def sign_in(self, request: Request, form: Form) -> Response:
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        sent = form.get("csrf", "")
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            return self._sign_in_page(request, "The sign-in form expired; try again.", 403)
        try:
            with self.services.serial:
                session_id, _ = self.services.sessions.open(form.get("secret", "").strip())
        except Unauthenticated:
            return self._sign_in_page(request, "That is not an active key's secret.", 401)
        response = RedirectResponse(f"{PREFIX}/tickets", status_code=303)
        _set_cookie(request, response, SESSION_COOKIE, session_id)
        response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    def sign_out(self, request: Request, form: Form) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        if (refused := self.csrf_refused(session, request, form)) is not None:
            return refused
        with self.services.serial:
            self.services.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # -- tickets --------------------------------------------------------------------------

    def tickets(self, request: Request) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        args = request.query_params
        found, problems = _ticket_filter(args)
        offset = _int(args.get("offset"), 0)
        with self.services.serial:
            queries = self.services.queries(session.key)
            results = queries.tickets(found, offset=offset)
            choices = queries.ticket_choices()
        kept = {k: v for k, v in args.items() if k != "offset" and v}
        return page("tickets.html", session=session, title="Tickets", results=results,
                    choices=choices, args=args, problems=problems,
                    page_link=lambda at: f"{PREFIX}/tickets?" + urlencode({**kept,
                                                                            "offset": at}))

    def ticket(self, request: Request) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        ticket_id = request.query_params.get("id", "")
        after = request.query_params.get("after")
        try:
            context = self.ticket_context(session, ticket_id,
                                          None if after is None else _int(after, 0))
        except NotFound:
            return self.not_found(session, f"No ticket {ticket_id!r}.")
        return page("ticket.html", session=session, title=f"Ticket {ticket_id}", **context)

    def ticket_state(self, request: Request) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        ticket_id = request.query_params.get("id", "")
        try:
            with self.services.serial:
                context = self.state_context(session, ticket_id,
                                        _int(request.query_params.get("version"), 1))
        except NotFound:
            return self.not_found(session, f"No ticket {ticket_id!r}.")
        return page("_state.html", session=session, **context)

    def ticket_chain(self, request: Request) -> Response:
        """The ticket's chain verified (every event, snapshot and timeline row of it,
        and the store's receipts): loaded after the ticket's first screen, which it
        would otherwise hold up as the ticket grows."""
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        ticket_id = request.query_params.get("id", "")
        try:
            with self.services.serial:
                queries = self.services.queries(session.key)
                last = int(queries.ticket(ticket_id)[0].version)
                findings = queries.verify(ticket_id)
        except NotFound:
            return self.not_found(session, f"No ticket {ticket_id!r}.")
        name = "_chain.html" if request.headers.get("HX-Request") else "chain.html"
        return page(name, session=session, title=f"Chain of ticket {ticket_id}",
                    ticket_id=ticket_id, findings=findings, last=last)

    def ticket_command(self, request: Request, form: Form) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        if (refused := self.csrf_refused(session, request, form)) is not None:
            return refused
        ticket_id = form.get("id", "")
        try:
            raw = command_bytes(form.get("command", ""), ticket_id, session.key, form,
                                        self.services.clock())
        except ValueError:
            return page("error.html", 400, session=session, title="Unknown command",
                        message="No such command.")
        with self.services.serial:
            outcome = self.services.apply(raw, session.key)
        if not request.headers.get("HX-Request"):
            return RedirectResponse(f"{PREFIX}/ticket?" + urlencode({"id": ticket_id}),
                                    status_code=303)
        try:
            context = self.ticket_context(session, ticket_id, None)
        except NotFound:
            return self.not_found(session, f"No ticket {ticket_id!r}.")
        return page("_ticket_main.html", session=session, outcome=outcome, **context)

    def ticket_context(self, session: Session, ticket_id: str, after: int | None) -> dict[str, Any]:
        with self.services.serial:
            queries = self.services.queries(session.key)
            current, _ = queries.ticket(ticket_id)
            state = {**current.state(), **queries.account(current)}
            last = int(state["version"])
            start = after if after is not None else max(0, (last - 1) // TIMELINE_PAGE
                                                        * TIMELINE_PAGE)
            timeline, held = queries.timeline(ticket_id, after=start, limit=TIMELINE_PAGE)
            before = (queries.timeline(ticket_id, after=start - 1, limit=1)[0].events
                      if start > 0 else [])
            sla = queries.sla(ticket_id, explain=True)
            as_of = self.state_context(session, ticket_id, last)
        zone = state["timezone"]
        clocks = [(name, sla[name], band(sla[name].get("ledger", []), zone))
                  for name in ("first_response", "resolution")]
        hashes = [e["hash"] for e in before + timeline.events]
        previous = ([None] if not before else []) + hashes
        events = list(zip(timeline.events, previous, strict=False))
        return {"ticket_id": ticket_id, "state": state, "last": last, "timeline": timeline,
                "events": events,
                "after": start, "held": held, "sla": sla,
                "clocks": clocks, "zone": zone, "local": local,
                "actions": actions(state["status"], session.key),
                "page_size": TIMELINE_PAGE, **as_of}

    def state_context(self, session: Session, ticket_id: str, version: int) -> dict[str, Any]:
        queries = self.services.queries(session.key)
        page_of, _ = queries.timeline(ticket_id, after=max(0, version - 2), limit=2)
        events = {e["version"]: e for e in page_of.events}
        event = events.get(version) or (page_of.events[-1] if page_of.events else None)
        if event is None:
            raise NotFound(f"ticket {ticket_id} not found")
        then, _ = queries.ticket(ticket_id, as_of=_at(event["occurred_at"]))
        before_event = events.get(event["version"] - 1)
        before = (queries.ticket(ticket_id, as_of=_at(before_event["occurred_at"]))[0].state()
                  if before_event and before_event["occurred_at"] != event["occurred_at"]
                  else None)
        then_state = then.state()
        return {"ticket_id": ticket_id, "as_of_event": event, "as_of_state": then_state,
                "as_of_changes": changed(before, then_state),
                "as_of_zone": then_state["timezone"], "local": local}

    # -- dashboards and operations ------------------------------------------------------

    def dashboards(self, request: Request) -> Response:
        """The four dashboards' first screen: the window's form and a placeholder each;
        their reports are asked by the requests htmx sends once it is drawn."""
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        window = _window(request.query_params, self.services.clock().date())
        return page("dashboards.html", session=session, title="Dashboards", window=window,
                    only=None, dashboards=DASHBOARDS.items(), names=list(DASHBOARDS),
                    titles=DASHBOARDS, loaded={})

    def dashboard(self, request: Request, name: str) -> Response:
        """One dashboard on its own page (the same section as on the dashboards'),
        its report asked by the request that follows the first screen."""
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        if name not in DASHBOARDS:
            return self.not_found(session, f"No dashboard {name!r}.")
        window = _window(request.query_params, self.services.clock().date())
        return page("dashboard.html", session=session, title=DASHBOARDS[name], window=window,
                    only=name, titles=DASHBOARDS, loaded={})

    def dashboard_section(self, request: Request, name: str) -> Response:
        """One dashboard drawn with its reports: the part htmx puts in place of the
        placeholder, or (without scripts) its own page drawn whole."""
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        if name not in DASHBOARDS:
            return self.not_found(session, f"No dashboard {name!r}.")
        window = _window(request.query_params, self.services.clock().date())
        context: dict[str, Any] = {}
        with self.services.serial:
            queries = self.services.queries(session.key)
            if name == "times":
                context["times"], context["times_by"] = times_dashboard(queries, window)
            else:
                context[name] = SERIES[name](queries, window)
        if request.headers.get("HX-Request"):
            return page("_dash_part.html", session=session, window=window, dash=name,
                        titles=DASHBOARDS, loaded={name: context})
        return page("dashboard.html", session=session, title=DASHBOARDS[name], window=window,
                    only=name, titles=DASHBOARDS, loaded={name: context})

    def what_if_form(self, request: Request) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        window = _window(request.query_params, self.services.clock().date())
        return page("what_if.html", session=session, title="What if", window=window,
                    policy_text="", comparison=None, problem=None)

    def what_if(self, request: Request, form: Form) -> Response:
        """The SLA report as recorded beside the same under the policy posted (its TOML
        text: the form's file, read into the text area by console.js, or pasted)."""
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        if (refused := self.csrf_refused(session, request, form)) is not None:
            return refused
        window = _window(form, self.services.clock().date())
        text = form.get("policy", "")
        try:
            policy = read_policy(text, session.key.tenant)
        except PolicyError as exc:
            return page("what_if.html", 422, session=session, title="What if", window=window,
                        policy_text=text, comparison=None, problem=str(exc))
        with self.services.serial:
            comparison = compare(self.services.queries(session.key), window.since,
                                 window.until, policy)
        return page("what_if.html", session=session, title="What if", window=window,
                    policy_text=text, comparison=comparison, problem=None)

    def operations(self, request: Request, retried: tuple[int, int] | None = None) -> Response:
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        with self.services.serial:
            queries = self.services.queries(session.key)
            letters = queries.dead_letters()
            parked = queries.parked()
        return page("operations.html", session=session, title="Operations",
                    letters=letters[-200:], letters_total=len(letters), parked=parked,
                    operator=is_operator(session), retried=retried)

    def retry_parked(self, request: Request, form: Form) -> Response:
        """The key's tenant's parked events applied again (an operator's key only)."""
        session = self.signed_in(request)
        if session is None:
            return self.to_sign_in(request)
        if (refused := self.csrf_refused(session, request, form)) is not None:
            return refused
        if not is_operator(session):
            return page("error.html", 403, session=session, title="Refused",
                        message=f"Only an operator's key (role {OPERATOR_ROLE}) may retry"
                                " parked events.")
        with self.services.serial:
            retried = self.services.retry_parked(session.key)
        return self.operations(request, retried)

    def _sign_in_page(self, request: Request, problem: str | None = None,
                      status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = page("sign_in.html", status, session=None, title="Sign in", csrf=token,
                        problem=problem)
        _set_cookie(request, response, SIGN_IN_COOKIE, token)
        return response





def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, path=PREFIX, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def _int(text: str | None, default: int) -> int:
    try:
        return max(0, int(text)) if text else default
    except ValueError:
        return default


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _at(text: str) -> datetime:
    return instant(text)


def _ticket_filter(args: Any) -> tuple[TicketFilter, list[str]]:
    problems = [f"{name} is not a date (YYYY-MM-DD)" for name in ("created_from", "created_to")
                if args.get(name) and _date(args.get(name)) is None]
    breached = {"yes": True, "no": False}.get(args.get("breached", ""))
    return TicketFilter(
        text=args.get("q", "").strip()[:200], status=args.get("status") or None,
        plan=args.get("plan") or None, priority=args.get("priority") or None,
        level=args.get("level") or None, breached=breached,
        created_from=_date(args.get("created_from")),
        created_to=_date(args.get("created_to"))), problems


def _window(args: Any, today: date) -> Window:
    by = args.get("by") if args.get("by") in PERIODS else "week"
    until = _date(args.get("to")) or today + timedelta(days=1)
    since = _date(args.get("from")) or until - timedelta(days=28)
    if since >= until:
        since = until - timedelta(days=1)
    return Window(since, until, by)

