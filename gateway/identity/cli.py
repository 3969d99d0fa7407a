"""``gateway teams|users|tokens`` for operators: bootstrap the first team and user, and
issue, list and revoke API tokens without going through HTTP.

Passwords are never taken from the command line (visible in ``ps`` and shell history):
``--password-stdin`` reads one line from standard input, else the user is created
without a password (token/JWT-only). A new token is printed once; only its hash is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from gateway.config import GatewayConfig
from gateway.errors import GatewayError

Op = Callable[[argparse.Namespace, Any], Awaitable[Any]]


def add_commands(sub: argparse._SubParsersAction) -> None:
    teams = sub.add_parser("teams", help="manage teams").add_subparsers(
        dest="action", required=True
    )
    p = teams.add_parser("create", help="create a team")
    p.add_argument("--name", required=True)
    p.add_argument("--owner", metavar="EMAIL", help="existing user who will own it")
    p.add_argument("--time-zone", default="UTC")
    p.add_argument("--retention-days", type=int, default=90)
    p.set_defaults(handler=_runner(_teams_create))
    p = teams.add_parser("list", help="list teams")
    p.set_defaults(handler=_runner(_teams_list))

    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    p = users.add_parser("create", help="create a user")
    p.add_argument("--email", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--super-admin", action="store_true")
    p.add_argument("--team", type=int, metavar="TEAM_ID", help="add to this team")
    p.add_argument("--role", default="member", choices=("owner", "admin", "member"))
    p.set_defaults(handler=_runner(_users_create))
    p = users.add_parser("set-password", help="set a password (ends the user's sessions)")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true", required=True)
    p.set_defaults(handler=_runner(_users_set_password))

    tokens = sub.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    p = tokens.add_parser("create", help="create an API token (printed once)")
    p.add_argument("--email", required=True, help="the user the token acts as")
    p.add_argument("--label", default="")
    p.add_argument("--expires-in-days", type=int, help="default: never expires")
    p.set_defaults(handler=_runner(_tokens_create))
    p = tokens.add_parser("list", help="list API tokens (never the tokens themselves)")
    p.add_argument("--email", help="only this user's tokens")
    p.set_defaults(handler=_runner(_tokens_list))
    p = tokens.add_parser("revoke", help="revoke an API token")
    p.add_argument("id", type=int)
    p.set_defaults(handler=_runner(_tokens_revoke))


def _runner(op: Op) -> Callable[[argparse.Namespace, GatewayConfig], int]:
    def handler(args: argparse.Namespace, config: GatewayConfig) -> int:
        return asyncio.run(_with_database(op, args, config))

    return handler


async def _with_database(op: Op, args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.app import opened
    from gateway.commands import print_json

    async with opened(config) as gw:
        await gw.db.ensure_schema(config.gateway.auto_migrate)
        try:
            result = await op(args, gw)
        except GatewayError as exc:
            print(f"gateway: {exc.message}", file=sys.stderr)
            return 1
    if result is not None:
        print_json(result)
    return 0


async def _user(email: str) -> Any:
    from gateway.errors import NotFound
    from gateway.identity import validation as v
    from gateway.identity.models import User

    user = await User.get_or_none(email=v.email(email))
    if user is None:
        raise NotFound(f"no user with email {email}")
    return user


async def _teams_create(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.identity import service
    from gateway.identity import validation as v

    owner = await _user(args.owner) if args.owner else None
    team = await service.create_team(
        args.name.strip() or "?",
        owner,
        v.time_zone(args.time_zone),
        v.retention_days(args.retention_days),
    )
    return {"team": service.team_json(team), "owner": owner.email if owner else None}


async def _teams_list(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.identity import service
    from gateway.identity.models import Team

    return {"teams": [service.team_json(t) for t in await Team.all().order_by("id")]}


async def _users_create(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.errors import NotFound
    from gateway.identity import service
    from gateway.identity.models import Team

    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    from gateway.inputs import parse_id

    team = None
    if args.team is not None:
        team = await Team.get_or_none(id=parse_id(args.team, "--team", Team))
        if team is None:
            raise NotFound(f"no team {args.team}")
    user = await service.create_user(
        args.email, password=password, name=args.name, is_super_admin=args.super_admin
    )
    if team is not None:
        await service.add_member(team, user, args.role)
    return {"user": service.user_json(user), "team": team.id if team else None}


async def _users_set_password(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.identity import service

    user = await _user(args.email)
    await service.set_password(user, sys.stdin.readline().rstrip("\r\n"))
    return {"user": service.user_json(user)}


async def _tokens_create(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.identity.tokens import create_api_token

    user = await _user(args.email)
    expires = None
    if args.expires_in_days is not None:
        expires = gw.clock.now() + timedelta(days=args.expires_in_days)
    token, row = await create_api_token(user, args.label, expires)
    return {"id": row.id, "token": token, "prefix": row.prefix, "expires_at": expires}


async def _tokens_list(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.identity.models import ApiToken

    query = ApiToken.all().select_related("user").order_by("id")
    if args.email:
        query = query.filter(user_id=(await _user(args.email)).id)
    return {
        "tokens": [
            {
                "id": t.id,
                "prefix": t.prefix,
                "label": t.label,
                "user": t.user.email,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "expires_at": t.expires_at,
                "revoked_at": t.revoked_at,
            }
            for t in await query
        ]
    }


async def _tokens_revoke(args: argparse.Namespace, gw: Any) -> Any:
    from gateway.errors import NotFound
    from gateway.identity.models import ApiToken
    from gateway.inputs import parse_id

    parse_id(args.id, "id", ApiToken)  # an id no row can have is an error, not a crash
    updated = await ApiToken.filter(id=args.id, revoked_at__isnull=True).update(
        revoked_at=gw.clock.now()
    )
    if not updated and not await ApiToken.exists(id=args.id):
        raise NotFound(f"no token {args.id}")
    return {"id": args.id, "revoked": True}
