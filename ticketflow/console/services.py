"""What the console is given: the query layer for a key, a way to send one command
with a key as its bounds, a way to retry a key's tenant's parked events, the keys, the
sessions and the engine's clock.

The console builds none of them on a store: the HTTP API (`ticketflow.http.app`), which
holds the write service and the read models open, hands in its own (`create_app`
includes the console's router). One console request works against the engine at a time
(`serial`): the write service keeps caches that are not shared between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ticketflow.application import Outcome
from ticketflow.clock import Clock
from ticketflow.console.sessions import Sessions
from ticketflow.keys import Key, Keys
from ticketflow.queries import Queries


@dataclass
class ConsoleServices:
    queries: Callable[[Key], Queries]
    apply: Callable[[bytes, Key], Outcome]
    #: The key's tenant's parked events applied again: (applied, still parked).
    retry_parked: Callable[[Key], tuple[int, int]]
    keys: Keys
    sessions: Sessions
    clock: Clock
    serial: threading.RLock = field(default_factory=threading.RLock)
