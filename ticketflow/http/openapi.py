"""Write the API's OpenAPI document to schemas/openapi.json.

Run `python -m ticketflow.http.openapi` after changing an endpoint or a model; a test
fails while the committed document and the app disagree. The document is made from an
app on a throwaway in-memory store: nothing of a real store goes into it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ticketflow.http.app import create_app
from ticketflow.settings import Settings

OUTPUT = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"


def document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        api = create_app(Settings(db=f"sqlite:///{scratch}/openapi.db"), rate="none")
        try:
            return api.openapi()
        finally:
            api.state.service.close()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render(document()), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
