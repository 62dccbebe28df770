"""The knowledge base from the command line (SPEC §11): suggestions on create_ticket's
outcome and from `ticketflow suggest`, and the topics that want an article."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.support.builders import T0, command_line, create_payload
from tests.support.cli import as_json, run
from tests.support.knowledge import PP, corpus_commands


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def ticket(message_id: str, ticket_id: str, minutes: int, **payload: str) -> bytes:
    return command_line(message_id, "create_ticket", ticket_id, T0 + timedelta(minutes=minutes),
                        "customer", create_payload(**payload))


def test_create_tickets_outcome_carries_ranked_article_ids_once_read_models_are_in_use(
    tmp_path: Path, sqlite_url: str,
) -> None:
    created = ticket("t-1", "T-1", 30, subject="Export timeout", description="large data")
    first = ticket("t-0", "T-0", 29, subject="Export timeout")
    result = run("apply", str(write_lines(tmp_path / "a.jsonl", [*corpus_commands(), first])),
                 db=sqlite_url)
    assert json.loads(result.stdout.splitlines()[-1])["suggestions"] == []  # no read models
    assert as_json(run("replay", "--json", db=sqlite_url))["applied"] == 7  # now in use
    lines = [created, created, ticket("t-2", "T-2", 31, channel="fax")]
    result = run("apply", str(write_lines(tmp_path / "b.jsonl", lines)), db=sqlite_url)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers[0]["suggestions"] == ["KB-A", "KB-D", "KB-C"]  # 3, 2, 1 words
    assert [a["status"] for a in answers[1:]] == ["duplicate", "rejected"]
    assert all("suggestions" not in a for a in answers[1:])


def test_suggest_needs_a_tenant_and_reads_text_as_words(tmp_path: Path,
                                                       sqlite_url: str) -> None:
    run("apply", str(write_lines(tmp_path / "in.jsonl", corpus_commands())), db=sqlite_url)
    refused = run("suggest", "password", db=sqlite_url)
    assert refused.returncode == 2 and "--tenant" in refused.stderr
    found = as_json(run("suggest", 'password" OR NEAR(* \x1b[2J', "--tenant", PP, "--json",
                        db=sqlite_url))
    assert [s["article_id"] for s in found["suggestions"]] == ["KB-B"]
    assert found["terms"] == ["password", "near", "2j"]  # ESC is no word; "[2J" leaves one
    table = run("suggest", "password", "--tenant", PP, db=sqlite_url)
    assert table.returncode == 0 and "Reset a password" in table.stdout


def test_report_topics_flags_recurring_topics_without_an_article(
    tmp_path: Path, sqlite_url: str,
) -> None:
    lines = [ticket(f"t-{n}", f"T-{n}", n, subject="Exports time out", category="technical",
                    subcategory="performance") for n in range(3)]
    lines += [ticket(f"l-{n}", f"L-{n}", 10 + n, subject="Cannot log in", category="account",
                     subcategory="login") for n in range(2)]
    lines.append(command_line("link", "link_article", "L-0", T0 + timedelta(minutes=20),
                              "agent", {"article_id": "KB-LOGIN"}))
    lines.append(ticket("prev", "P-1", -60 * 24 * 3, subject="Exports time out"))
    run("apply", str(write_lines(tmp_path / "in.jsonl", [*corpus_commands(), *lines])),
        db=sqlite_url)
    day = T0.date()
    report = as_json(run("report", "topics", "--from", str(day), "--to",
                         str(day + timedelta(days=1)), "--tenant", PP, "--json", db=sqlite_url))
    topics = {(r["category"], r["subcategory"]): r for r in report["categories"]}
    technical = topics[("technical", "performance")]
    assert (technical["tickets"], technical["previous"], technical["trend"],
            technical["candidate"]) == (3, 0, "rising", True)
    assert (topics[("account", "login")]["articles"],
            topics[("account", "login")]["candidate"]) == (1, False)
    terms = {r["term"]: r for r in report["terms"]}
    assert (terms["exports"]["tickets"], terms["exports"]["article"],
            terms["exports"]["candidate"]) == (3, "KB-A", False)
    assert (terms["log"]["tickets"], terms["log"]["candidate"]) == (2, True)
    assert "cannot" in terms  # not a stop word


def test_report_topics_by_week_compares_each_week_with_the_one_before(
    tmp_path: Path, sqlite_url: str,
) -> None:
    lines = [ticket(f"t-{n}", f"T-{n}", n, subject="Exports time out") for n in range(3)]
    lines.append(ticket("prev", "P-1", -60 * 24 * 3, subject="Exports time out"))  # Friday
    run("apply", str(write_lines(tmp_path / "in.jsonl", lines)), db=sqlite_url)
    window = ("--from", str(T0.date() - timedelta(days=7)), "--to",
              str(T0.date() + timedelta(days=7)), "--tenant", PP)
    report = as_json(run("report", "topics", *window, "--by", "week", "--json",
                         db=sqlite_url))
    assert report["by"] == "week"
    assert [(r["period"], r["tickets"], r["previous"], r["trend"])
            for r in report["categories"]] == [("2026-11-16", 3, 1, "rising")]
    articles = as_json(run("report", "articles", *window, "--by", "week", "--json",
                           db=sqlite_url))
    assert articles["rows"] == []  # no article, in any week
    # 16 November 14:00Z is 17 November 03:00 in Auckland (UTC+13): the local day counts
    local = as_json(run("report", "topics", *window, "--by", "day", "--timezone",
                        "Pacific/Auckland", "--json", db=sqlite_url))
    assert [(r["period"], r["tickets"]) for r in local["categories"]] == [("2026-11-17", 3)]
    utc = as_json(run("report", "topics", *window, "--by", "day", "--json", db=sqlite_url))
    assert [(r["period"], r["tickets"]) for r in utc["categories"]] == [("2026-11-16", 3)]
