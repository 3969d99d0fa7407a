"""Models shared by many routes."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from gateway.inputs import INT4_MAX

T = TypeVar("T")


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str
    code: str
    field: str | None = None


class Page(BaseModel, Generic[T]):
    """A newest-first page; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None


class PageQuery(BaseModel):
    limit: int | None = Field(None, ge=0, le=INT4_MAX, description="1 to 200 (default 50)")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class Accepted(BaseModel):
    """Taken; it goes on in the background."""

    model_config = {"extra": "allow"}
    status: str | None = None


class Anything(BaseModel):
    """A JSON object whose keys are not fixed."""

    model_config = {"extra": "allow"}


JsonObject = dict[str, Any]


class TeamHeader(BaseModel):
    x_team_id: int | None = Field(
        None, ge=1, le=INT4_MAX, description="the team, when the path does not say"
    )
