"""schemas/asyncapi.json passes the official AsyncAPI parser (@asyncapi/parser, installed
by scripts/test.sh into .cache/asyncapi) with no diagnostic of severity error, and the
same check fails on a broken document."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VALIDATE = ROOT / "scripts" / "asyncapi-validate.cjs"
PARSER = ROOT / ".cache" / "asyncapi" / "node_modules" / "@asyncapi" / "parser"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is missing (Node.js 20+; scripts/test.sh expects it)"
    assert PARSER.is_dir(), (f"{PARSER} is missing: run scripts/test.sh, or npm install"
                             " --prefix .cache/asyncapi @asyncapi/parser@3.6.6")
    return subprocess.run([node, str(VALIDATE), str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_document_has_no_error_for_the_official_parser() -> None:
    checked = validate(ROOT / "schemas" / "asyncapi.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "AsyncAPI 3.1.0, 5 channels" in checked.stdout


def test_the_check_fails_on_a_broken_document(tmp_path: Path) -> None:
    document = json.loads((ROOT / "schemas" / "asyncapi.json").read_text(encoding="utf-8"))
    del document["channels"]["commands"]["address"]
    document["operations"]["applyCommands"]["action"] = "consume"
    (tmp_path / "broken.json").write_text(json.dumps(document), encoding="utf-8")
    checked = validate(tmp_path / "broken.json")
    assert checked.returncode == 1
    assert "Error" in checked.stdout and "/operations/applyCommands/action" in checked.stdout
