"""Seeds a running gateway's database for the console's browser tests (run as
``python -m tests.support.console_seed <plugins.toml>`` once ``gateway serve`` has
migrated it): two teams with their numbers and agents, an owner of each and a member
of the second team, all with :data:`tests.support.identity.PASSWORD`. Prints the ids as
JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from gateway.app import opened
from gateway.config import load_config
from gateway.identity import service
from gateway.identity.models import VoiceAgent
from tests.support.call_story import AGENT, NUMBER
from tests.support.identity import make_user


async def seed(config_path: str) -> dict[str, int]:
    async with opened(load_config(config_path)) as _gw:
        owner = await make_user("owner@acme.test")
        acme = await service.create_team("Acme", owner)
        await service.add_phone_number(acme, NUMBER)
        await VoiceAgent.create(team=acme, agent_id=AGENT, label="Ava")
        globex = await service.create_team("Globex", None)
        await service.add_phone_number(globex, "+14155550111")
        member = await make_user("member@globex.test")
        await service.add_member(globex, member, "member")
        admin = await make_user("ops@renchi.test", super_admin=True)
        return {"acme": acme.id, "globex": globex.id, "owner": owner.id, "ops": admin.id}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed(sys.argv[1]))))
