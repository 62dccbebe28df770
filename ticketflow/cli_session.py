"""What one run of the command line opens, once and only when asked (`Session`): the
settings, the write service, the read models and the query layer, scoped to `--tenant`
(TICKETFLOW_TENANT). Every handler of `ticketflow.cli`, `cli_export` and `cli_webhooks`
takes one."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import Engine

from ticketflow.application import TicketingApp
from ticketflow.bootstrap import build_app, load_policies
from ticketflow.keys import Keys
from ticketflow.projections.db import engine_for
from ticketflow.queries import Progress, Queries, ReadModels, Scope
from ticketflow.render import progress_bar
from ticketflow.settings import TENANT_ENV, Settings, SettingsError, tenant_scope


class Session:
    """What one run of the command line opens, once, when first asked."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scope = Scope(tenant_scope(getattr(args, "tenant", None)))
        self.show_progress = not getattr(args, "json", False)
        self._opened: list[Callable[[], None]] = []

    @cached_property
    def settings(self) -> Settings:
        """The settings, from the command line and the environment, read once."""
        return Settings.from_env(db=getattr(self.args, "db", None),
                                 kafka=getattr(self.args, "kafka", None))

    @cached_property
    def app(self) -> TicketingApp:
        """The write service on the configured store (it also reads it)."""
        self._known_tenant()
        app = build_app(self.settings)
        self._opened.append(app.close)
        return app

    @cached_property
    def engine(self) -> Engine:
        """The read models' database (the event store's, by default)."""
        engine = engine_for(self.settings.db)
        self._opened.append(engine.dispose)
        return engine

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.engine, self.settings.clock)

    @cached_property
    def read_models(self) -> ReadModels:
        return ReadModels(self.app, self.engine, self._catching_up)

    @cached_property
    def queries(self) -> Queries:
        return Queries(self.app, self.read_models, self.scope)

    def _catching_up(self, catch_up: Callable[[Progress], int]) -> int:
        with self.bar("updating read models") as progress:
            return catch_up(progress)

    @contextmanager
    def bar(self, description: str) -> Iterator[Progress]:
        """A progress bar on standard error (none with --json)."""
        with progress_bar(self.show_progress) as bar:
            task = bar.add_task(description, total=None)
            yield lambda n: bar.update(task, completed=n)

    def _known_tenant(self) -> None:
        policies = load_policies(self.settings)
        if self.scope.tenant is not None and self.scope.tenant not in policies:
            raise SettingsError(f"unknown tenant {self.scope.tenant!r} (--tenant or"
                                f" {TENANT_ENV}); known: {', '.join(sorted(policies))}")

    def close(self) -> None:
        for close in reversed(self._opened):
            close()
