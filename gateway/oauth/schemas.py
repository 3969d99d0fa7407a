"""Models of the integration routes, for the API contract (gateway.contract)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.inputs import INT4_MAX


class ConnectQuery(BaseModel):
    team_id: int | None = Field(None, ge=1, le=INT4_MAX)
    return_to: str | None = Field(None, description="where the browser goes when done")


class ConnectIn(BaseModel):
    """Options kept with the flow's state (string fields only)."""

    model_config = {"extra": "allow"}
    return_to: str | None = None


class ConnectStarted(BaseModel):
    authorization_url: str
    continue_url: str


class ContinueQuery(BaseModel):
    state: str


class CallbackQuery(BaseModel):
    state: str | None = None
    code: str | None = None
    error: str | None = None


class AccountOut(BaseModel):
    id: str | None
    label: str | None


class ByOut(BaseModel):
    id: int
    email: str


class ConnectionOut(BaseModel):
    model_config = {"extra": "allow"}
    provider: str
    display_name: str
    configured: bool
    status: str
    account: AccountOut | None
    scopes: list[str]
    connected_at: str | None
    connected_by: ByOut | None
    access_token_expires_at: str | None
    last_error: str | None


class StatusOut(BaseModel):
    team_id: int
    integrations: list[ConnectionOut]


class TeamQuery(BaseModel):
    team_id: int | None = Field(None, ge=1, le=INT4_MAX, description="or X-Team-Id")


class Disconnected(BaseModel):
    model_config = {"extra": "allow"}
    provider: str
    status: str
