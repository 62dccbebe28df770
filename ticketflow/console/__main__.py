"""`python -m ticketflow.console [--db URL] [--host H] [--port P]`: the console alone.

Serves `/ui/` on the store (`--db`, default TICKETFLOW_DB or sqlite:///ticketflow.db)
until interrupted. Sign in with a secret from `ticketflow keys create`. (The HTTP API's
`ticketflow http` will serve the console beside the API; this door serves it alone.)
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from ticketflow.bootstrap import build_app
from ticketflow.console.routes import console_router, mount_static
from ticketflow.console.services import ConsoleServices
from ticketflow.keys import Keys
from ticketflow.projections.db import engine_for
from ticketflow.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ticketflow.console",
                                     description="Serve the web console (SPEC §9.1) alone.")
    parser.add_argument("--db", help="the store (default: TICKETFLOW_DB, or"
                                     " sqlite:///ticketflow.db)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    settings = Settings.from_env(db=args.db)
    app = build_app(settings)
    engine = engine_for(settings.db)
    services = ConsoleServices.open(app, engine, Keys(engine, settings.clock))
    web = FastAPI(title="ticketflow console", openapi_url=None, docs_url=None, redoc_url=None)
    web.include_router(console_router(services))
    mount_static(web)
    print(f"ticketflow console on http://{args.host}:{args.port}/ui/ (Ctrl-C stops it)")
    try:
        uvicorn.run(web, host=args.host, port=args.port, log_level="warning")
    finally:
        app.close()
        engine.dispose()


if __name__ == "__main__":
    main()
