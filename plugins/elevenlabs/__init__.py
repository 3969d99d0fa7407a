"""ElevenLabs plugin: the voice agent's webhooks, its personalization, and the
reconciliation of what the webhooks missed.

- ``POST /api/webhooks/elevenlabs``: every post-call type, signed
  (``ElevenLabs-Signature``). The body streams to a temporary file while its HMAC is
  computed (an audio delivery is up to ``audio_max_bytes``, 150 MiB by default; memory
  stays flat). Each delivery is stored under ElevenLabs' own type and its apply fills
  the neutral call analysis and emits the neutral event (``voice.call.analyzed``,
  ``voice.call.audio_stored``, ``voice.call.initiation_failed``); see
  :mod:`plugins.elevenlabs.events`. Routed by ``agent_id``; deduplicated on
  (conversation id, type).
- ``POST /api/webhooks/elevenlabs/personalize``: the conversation initiation client
  data for an inbound call, under a deadline (:mod:`plugins.elevenlabs.personalize`),
  from the team settings this plugin registers
  (:mod:`plugins.elevenlabs.team_settings`).
- Reconciliation of the conversations whose webhook never arrived: the scheduled task
  ``elevenlabs-reconcile`` and ``gateway elevenlabs reconcile``
  (:mod:`plugins.elevenlabs.reconcile`, :mod:`plugins.elevenlabs.commands`).

See docs/plugins/elevenlabs.md.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart

from gateway import hookimpl
from gateway.config import GatewayConfig
from gateway.webhooks import Streaming, WebhookSource
from plugins.elevenlabs import commands, contract, personalize
from plugins.elevenlabs import settings as settings_mod
from plugins.elevenlabs.events import Applier, Parser
from plugins.elevenlabs.settings import SOURCE_NAME
from plugins.elevenlabs.signature import Signer, Verifier
from plugins.elevenlabs.team_settings import ElevenLabsTeamSettings


@hookimpl
def register_webhook_sources(config: GatewayConfig) -> list[WebhookSource]:
    cfg = settings_mod.load(config)
    return [
        WebhookSource(
            name=SOURCE_NAME,
            path="elevenlabs",
            verify=Verifier(),
            parse=Parser(cfg),
            apply=Applier(cfg),
            max_body_bytes=cfg.audio_max_bytes,
            form=False,
            streaming=Streaming(
                signer=Signer(cfg.secrets()), timeout_seconds=cfg.body_timeout_seconds
            ),
            contract=contract.POST_CALL,
        )
    ]


@hookimpl
def register_team_settings(config: GatewayConfig) -> type[ElevenLabsTeamSettings]:
    return ElevenLabsTeamSettings


@hookimpl
def register_routes(app: Quart, config: GatewayConfig) -> Blueprint:
    cfg = settings_mod.load_quietly(config)
    if cfg.personalize_secret is None or not cfg.personalize_secret.get_secret_value():
        config.warn(
            "plugin 'elevenlabs': no personalize_secret configured: "
            f"{personalize.PATH} only accepts the teams' own secrets"
        )
    return personalize.blueprint(app, cfg)


@hookimpl
def register_scheduled_tasks(config: GatewayConfig) -> list[Any] | None:
    return commands.scheduled_tasks(config)


@hookimpl
def register_commands(subparsers: Any, config: GatewayConfig) -> None:
    commands.add_commands(subparsers)


@hookimpl
def startup(app: Quart, config: GatewayConfig) -> None:
    personalize.personalizer(app).writer.start()


@hookimpl
async def shutdown(app: Quart, config: GatewayConfig) -> None:
    await personalize.personalizer(app).stop()
