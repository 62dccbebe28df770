"""Knowledge-base articles written by agents (SPEC §11): a stream of their own.

An article is created once (`create_article`) and then edited (`update_article`);
every event carries the article's whole text after it (title, body, tags), so the
read model of an article is a function of its latest event alone. Articles published
from a ticket (`publish_as_article`, after the customer's consent) are events of that
ticket; the knowledge-base read model joins both (`projections/knowledge.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketflow.domain.commands import (
    CREATE_ARTICLE,
    UPDATE_ARTICLE,
    CommandType,
    CreateArticle,
    P,
    UpdateArticle,
)
from ticketflow.domain.errors import PolicyViolation
from ticketflow.domain.policy import Policy
from ticketflow.domain.streams import Context, Stream


class Article(Stream):
    """One knowledge-base article of a tenant, by its article id."""

    KIND = "article"

    class ArticleCreated(Stream.Created):
        pass

    class ArticleUpdated(Stream.Event):
        pass

    def __init__(
        self, tenant: str, ticket_id: str, occurred_at: datetime, data: dict[str, Any],
        hash: str,
    ) -> None:
        self.tenant = tenant
        self.stream_id = ticket_id
        self.last_hash = hash
        self.last_occurred_at = occurred_at
        self.text: dict[str, Any] = _text(data)

    def note_event(self, event: Stream.Event) -> None:
        super().note_event(event)
        self.text = _text(event.data)

    @classmethod
    def create(cls, ctx: Context, policy: Policy, article_id: str,
               payload: CreateArticle) -> Article:
        """The article a create_article command starts."""
        CREATE_ARTICLE.check_role(ctx.role)
        data = {"article_id": article_id, "title": payload.title, "body": payload.body,
                "tags": sorted(set(payload.tags))}
        return cls._start(cls.ArticleCreated, article_id, ctx, data)

    def handle(self, command: CommandType[P], ctx: Context, policy: Policy, payload: P) -> None:
        """update_article: the article's text after the edit (unchanged fields kept)."""
        if command is not UPDATE_ARTICLE or not isinstance(payload, UpdateArticle):
            raise TypeError(f"an article takes update_article, not {command.name}")
        self._guard_common(ctx)
        command.check_role(ctx.role)
        text = {
            "title": self.text["title"] if payload.title is None else payload.title,
            "body": self.text["body"] if payload.body is None else payload.body,
            "tags": self.text["tags"] if payload.tags is None else sorted(set(payload.tags)),
        }
        if text == self.text:
            raise PolicyViolation("the update changes nothing in the article")
        self._emit(self.ArticleUpdated, ctx, {"article_id": self.stream_id, **text})


def _text(data: dict[str, Any]) -> dict[str, Any]:
    return {"title": data["title"], "body": data["body"], "tags": list(data["tags"])}
