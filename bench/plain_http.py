"""The HTTP benchmark's baseline server: a plain FastAPI endpoint that saves one raw
eventsourcing aggregate per request, on the same database, under the same uvicorn.

    python -m bench.plain_http --db URL --port P

No keys, no parsing beyond JSON, no policy, no SLA, no receipts, no audit log: what
any FastAPI + eventsourcing service pays for one write, which ticketflow's
`POST /v1/commands` is measured against (bench/http.py).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from ticketflow.settings import eventstore_env


class Note(Aggregate):
    @event("Noted")
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


class Notes(Application):
    name = "plainbench"


def build(db: str) -> FastAPI:
    notes = Notes(env=eventstore_env(db))
    api = FastAPI()

    @api.post("/v1/commands", status_code=201)
    def command(body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        note = Note(body)
        notes.save(note)
        return JSONResponse({"id": str(note.id), "status": "accepted"}, status_code=201)

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.pop("TICKETFLOW_DB", None)
    uvicorn.run(build(args.db), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
