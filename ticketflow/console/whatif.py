"""The what-if comparison (SPEC §9.1): the SLA report as recorded beside the same report
re-evaluated under another policy (`Queries.report_sla(..., what_if=policy)`, as
`ticketflow report sla --policy FILE`), paired by plan × priority.

A policy is read from its TOML text as `ticketflow policy` reads a file; it must be the
key's tenant's (a policy is a tenant's: its id is the tenant), or nothing could be
re-evaluated under it. Nothing is stored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from ticketflow.domain.policy import Policy, PolicyError, load_policy_text
from ticketflow.queries import Queries

CLOCKS = ("first_response", "resolution")
#: The longest policy text read (the shipped ones are under 3 KiB).
MAX_POLICY_CHARS = 32 * 1024


def read_policy(text: str, tenant: str | None) -> Policy:
    """The policy of this TOML text, or PolicyError saying why not."""
    if not text.strip():
        raise PolicyError("choose a policy file, or paste its TOML")
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"a policy is at most {MAX_POLICY_CHARS // 1024} KiB of TOML")
    policy = load_policy_text(text, "the policy given")
    if tenant is not None and policy.id != tenant:
        raise PolicyError(f"this policy is {policy.id!r}'s; this key sees {tenant!r} only,"
                          " so nothing of it could be re-evaluated")
    return policy


def compare(queries: Queries, since: date, until: date, policy: Policy) -> dict[str, Any]:
    """Recorded and re-evaluated compliance, row by row (plan × priority), and in all."""
    report = queries.report_sla(_midnight(since), _midnight(until), what_if=policy)
    recorded = {_key(r): r for r in report["rows"]}
    other = {_key(r): r for r in report["what_if"]["rows"]}
    rows = []
    for key in sorted(recorded.keys() | other.keys(), key=_order):
        rows.append({"plan": key[1], "priority": key[2], "recorded": recorded.get(key),
                     "what_if": other.get(key)})
    return {"as_of": report["as_of"], "policy": report["what_if"]["policy"], "rows": rows,
            "total": {"recorded": _total(report["rows"]),
                      "what_if": _total(report["what_if"]["rows"])}}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["tenant"], row["plan"], row["priority"]


_PRIORITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _order(key: tuple[str, str, str]) -> tuple[str, str, int, str]:
    return key[0], key[1], _PRIORITY.get(key[2], 9), key[2]


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clock in CLOCKS:
        met = sum(r[clock]["met"] for r in rows)
        breached = sum(r[clock]["breached"] for r in rows)
        out[clock] = {"met": met, "breached": breached,
                      "compliance_percent": round(100.0 * met / (met + breached), 1)
                      if met + breached else None}
    return out
