"""Teams, users, memberships, API tokens, and what routes inbound traffic to a team
(its phone numbers and voice-agent ids)."""

from __future__ import annotations

from gateway.identity import validation
from gateway.identity.models import ROLES, Membership, PhoneNumber, Team, User, VoiceAgent
from gateway.identity.schemas import UserOut
from gateway.identity.service import create_user, team_json, user_json

__all__ = [
    "ROLES",
    "Membership",
    "PhoneNumber",
    "Team",
    "User",
    "UserOut",
    "VoiceAgent",
    "create_user",
    "team_json",
    "user_json",
    "validation",
]
