"""The composition root: build the engine from settings. Nothing connects at import."""

from __future__ import annotations

from ticketflow.application import TicketingApp
from ticketflow.cipher import check_store_key
from ticketflow.clock import Clock
from ticketflow.domain.policy import Policy, load_policy_dir, shipped_policies
from ticketflow.settings import Settings, eventstore_env


def load_policies(settings: Settings) -> dict[str, Policy]:
    """Shipped policies, overridden by any in TICKETFLOW_POLICIES (same id wins)."""
    policies = shipped_policies()
    if settings.policies_dir is not None:
        policies.update(load_policy_dir(settings.policies_dir))
    return policies


def build_app(settings: Settings, clock: Clock | None = None) -> TicketingApp:
    """The application service on the configured event store (and its key, if any),
    reading `clock` (default: the settings' clock) for recorded_at and what is due."""
    app = TicketingApp(load_policies(settings), eventstore_env(settings.db),
                       clock=clock or settings.clock, max_skew=settings.max_skew)
    try:
        check_store_key(app)
    except Exception:
        app.close()
        raise
    return app
