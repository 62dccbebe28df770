"""Generate the JSON Schema files in schemas/json from the pydantic models.

Run `python -m ticketflow.schemas.generate` after changing a model; a test fails
while the files and the models disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ticketflow.schemas.commands import COMMAND_ADAPTER
from ticketflow.schemas.events import EVENT_MODELS

OUTPUT = Path(__file__).resolve().parent / "json"


def documents() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema document."""
    docs = {"command.json": _titled(COMMAND_ADAPTER.json_schema(), "ticketflow command")}
    for name, model in sorted(EVENT_MODELS.items()):
        docs[f"event.{name}.json"] = _titled(model.model_json_schema(by_alias=True), name)
    return docs


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _titled(schema: dict[str, Any], title: str) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}


def main() -> int:
    OUTPUT.mkdir(exist_ok=True)
    for name, document in documents().items():
        (OUTPUT / name).write_text(render(document), encoding="utf-8")
    print(f"wrote {len(documents())} schema files to {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
