"""The web console (SPEC §9.1): pages under `/ui` for auditors, analysts and agents.

A door like the command line: it signs a browser in with a key, reads through the
query layer in that key's scope and sends commands through the write service with the
key as their bounds; it decides nothing itself. `console_router(services)` gives its
routes, `mount_static(app)` its static files (htmx and Chart.js, vendored:
static/VENDORED.txt).
"""

from ticketflow.console.routes import console_router, mount_static
from ticketflow.console.services import ConsoleServices

__all__ = ["ConsoleServices", "console_router", "mount_static"]
