"""The contract between the gateway core and its plugins.

Calling. Every hook is called by the core through pluggy (``pm.hook.<name>``) with
keyword arguments only, so an implementation may accept any subset of the arguments
listed here and keeps working when a spec grows a new argument.

Order. Implementations run in pluggy's order: those marked ``@hookimpl(tryfirst=True)``
first, then the others from the most recently registered plugin to the earliest, then
those marked ``trylast=True``. The core's own plugins are registered first, then the
installed plugins in alphabetical order of their entry-point names, then plugins passed
to ``create_app(extra_plugins=...)`` in the order given. So without ``tryfirst`` /
``trylast`` a plugin named ``b_crm`` is called before one named ``a_crm``: mark your
implementation when its position matters. The core's ``authenticate`` is ``trylast``
(plugins' authenticators are asked before the built-in tokens and cookie); the job
worker's ``startup`` is ``trylast`` and its ``shutdown`` ``tryfirst``.

Sync and async. ``register_*`` hooks run while the app is created (``register_commands``:
while the command line is parsed) and must return data.
Every other hook (``authenticate``, ``lookup_contact``, ``startup``, ``shutdown``) may
be ``async def``: calling it only collects one pending call per implementation, which
the core then awaits one after another in the order above (see :mod:`gateway.dispatch`).
Where "the first result wins" (``authenticate``, ``lookup_contact``), the core stops at
the first result other than ``None`` and the later implementations do not run at all.
No hook uses pluggy's ``firstresult``, which cannot wait for a coroutine.

Wrappers. ``@hookimpl(wrapper=True)`` (and old-style ``hookwrapper=True``) wrap each call
as pluggy documents: code before ``yield`` runs before any implementation, ``yield``
gives the list of results, and what the wrapper returns is used instead. For a
``register_*`` hook the results are the implementations' return values. For the other
hooks they are the pending calls (awaitables naming their ``.plugin``, none run yet):
a wrapper may reorder, drop or add to them (a plain value counts as an answer), or raise
to end the call (``Unauthorized`` from an ``authenticate`` wrapper answers 401).

Tracing. ``GATEWAY_TRACE_HOOKS=1`` logs every hook call, its arguments and its results
(logger ``gateway.plugins``, one line each).

Plugins write ``from gateway import hookimpl`` and decorate module-level functions.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import argparse

    from pydantic import BaseModel
    from quart import Blueprint, Quart, Request

    from gateway.auth import Principal
    from gateway.config import GatewayConfig
    from gateway.events import EventHandler
    from gateway.identity.models import Team
    from gateway.oauth import OAuthProvider
    from gateway.scheduling import ScheduledTask
    from gateway.sync import CRM
    from gateway.webhooks import WebhookSource

# The annotations below are the exact types the core accepts (docs/typing.md); the
# ``register_*`` results are also checked when the app is created (gateway.registries).
# The other hooks may be ``async def``: their annotations include the awaitable.

hookspec = HookspecMarker("gateway")
hookimpl = HookimplMarker("gateway")


# --- storage ------------------------------------------------------------------------


@hookspec
def register_models(config: GatewayConfig) -> dict[str, dict[str, Any]] | None:
    """Contribute Tortoise ORM apps (models and their migrations).

    Called once at startup, before the database is opened and before migrations run.

    :param config: the loaded :class:`gateway.config.GatewayConfig`.
    :return: a mapping ``{app_label: {"models": [module, ...], "migrations": "pkg"}}``
        (the shape of one entry of Tortoise's ``apps`` setting), or ``None``. Results of
        all plugins are merged; an app label used twice stops startup.

    Models may reference the core's models as ``"identity.Team"``; a migration that does
    must list the core migration it needs in its ``dependencies``.
    """


# --- OAuth --------------------------------------------------------------------------


@hookspec
def register_oauth_providers(config: GatewayConfig) -> list[OAuthProvider] | None:
    """Describe the OAuth providers this plugin connects teams to.

    Called once at startup. The core builds ``/api/integrations/<name>/connect``,
    ``/callback`` and ``/disconnect`` for every provider returned, and owns the state,
    PKCE, token storage, refresh and revocation. A plugin only describes.

    :param config: the loaded gateway configuration; read your own settings with
        ``config.plugin_config(<your name>, <your settings model>)``.
    :return: a list of :class:`gateway.oauth.OAuthProvider` (or ``None``). Results of all
        plugins are concatenated; a provider name used twice, or anything that is not an
        ``OAuthProvider``, stops startup naming the plugin.
    """


# --- webhooks -----------------------------------------------------------------------


@hookspec
def register_webhook_sources(config: GatewayConfig) -> list[WebhookSource] | None:
    """Describe the signed webhook endpoints this plugin receives.

    Called once at startup. The core mounts each source under ``/api/webhooks/`` and
    runs it through size limit, signature check, parsing, deduplication and the durable
    job queue, in that order.

    :param config: the loaded gateway configuration.
    :return: a list of :class:`gateway.webhooks.WebhookSource` (or ``None``). Results are
        concatenated; a route or source name used twice, or anything that is not a
        ``WebhookSource``, stops startup naming the plugin.
    """


@hookspec
def register_event_handlers(config: GatewayConfig) -> list[EventHandler] | None:
    """Ask to be told about stored events.

    Called once at startup. Every handler becomes its own job for every matching event,
    so one failing handler never blocks or repeats another.

    :param config: the loaded gateway configuration.
    :return: a list of :class:`gateway.events.EventHandler` (or ``None``). Results are
        concatenated; a handler name used twice, or anything that is not an
        ``EventHandler``, stops startup naming the plugin.
    """


# --- CRMs (after-call sync) -----------------------------------------------------------


@hookspec
def register_crms(config: GatewayConfig) -> list[CRM] | None:
    """Describe the CRMs this plugin logs calls in and looks callers up in.

    Called once while the app is created. For every CRM returned the core subscribes a
    handler named ``<name>.log_call`` to ``voice.call.analyzed`` and owns everything
    around the plugin's few functions: the effects ledger (each call logged exactly once,
    across retries, duplicates, replays and crashes), tokens and refresh, the provider's
    rate limits across processes, retries, and the caller lookup for personalization
    (the core's ``lookup_contact`` asks the team's connected CRMs in this order). See
    docs/sync.md.

    :param config: the loaded gateway configuration; read your own settings with
        ``config.plugin_config(<your name>, <your settings model>)``.
    :return: a list of :class:`gateway.sync.CRM` (or ``None``). Results of all plugins
        are concatenated; a CRM name used twice, or anything that is not a ``CRM``,
        stops startup naming the plugin.
    """


# --- team settings ------------------------------------------------------------------


@hookspec
def register_team_settings(config: GatewayConfig) -> type[BaseModel] | None:
    """Declare the settings a team admin edits for this plugin, per team.

    Called once while the app is created. The core stores one validated document per
    (team, plugin), serves it at ``/api/teams/<id>/settings/<plugin>`` (members read,
    owners and admins write; the JSON schema of the model is served too, for forms), and
    code reads it typed with :func:`gateway.team_settings.get_team_settings`. Fields
    typed ``SecretStr`` (nested ones too) are encrypted at rest and never returned.

    :param config: the loaded gateway configuration.
    :return: a pydantic model class whose fields all have defaults (what a team that
        saved nothing reads), or ``None``. The settings are keyed by the registering
        plugin's name (its entry-point name); one model per plugin. A result that is not
        a model class, or a model that cannot be built from ``{}``, stops startup with
        one line naming the plugin.
    """


# --- scheduling ---------------------------------------------------------------------


@hookspec
def register_scheduled_tasks(config: GatewayConfig) -> list[ScheduledTask] | None:
    """Describe periodic tasks.

    Called once while the app is created; must return data, not a coroutine. The core
    validates every task before the app serves (a bad name or cron expression stops
    startup with one line naming the plugin), serves each at ``/api/cron/<name>`` (GET
    and POST, ``Authorization: Bearer <cron_secret>``), fires it from the built-in
    ticker (``run_scheduler``), and runs each schedule window once across pingers,
    tickers and replicas; a failed window may be retried, ``?force=true`` runs it again.

    :param config: the loaded gateway configuration.
    :return: a list of :class:`gateway.scheduling.ScheduledTask` (``name``,
        ``schedule`` as a UTC cron expression, ``handler``, ``description``), or
        ``None``. Results are concatenated; a task name used twice, or anything that is not a
        ``ScheduledTask``, stops startup naming the plugin.

    The handler is ``async (ctx: gateway.scheduling.TaskContext) -> Mapping | None``:
    ``ctx`` carries the window (``window_start``, ``window_end``,
    ``previous_window_start``), ``run_id``, ``attempt``, ``forced``, ``trigger``,
    ``app``, ``config``, ``clock`` and ``http``. The returned mapping of figures
    (counts, bytes) is stored on the run. Raise :class:`gateway.scheduling.TaskSkipped`
    for "nothing could be done" (recorded as skipped, not retried); any other exception
    records a failure. Handlers must be idempotent: a run whose process died is run
    again.
    """


# --- command line ---------------------------------------------------------------------


@hookspec
def register_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], config: GatewayConfig
) -> None:
    """Add subcommands to the ``gateway`` command line (e.g. ``gateway acme sync``).

    Called before the arguments are parsed, for an invocation whose command is not one
    of the core's (and for ``gateway --help``), with the configuration the command will
    get: only enabled plugins are asked, and the core's own commands never load plugins
    first. Must return data, not a coroutine.

    :param subparsers: the ``argparse`` sub-parsers of ``gateway``. Add one parser named
        for your plugin (``subparsers.add_parser("acme", help=...)``), with its own
        subcommands if it has several, and set ``handler`` on each leaf with
        ``set_defaults(handler=fn)``: ``fn(args, config) -> int`` is called with the
        parsed ``argparse.Namespace`` and the loaded configuration, and returns the exit
        status (raise :class:`gateway.errors.StartupError` for one line on stderr and
        status 2). ``--config`` is accepted after your subcommands automatically.
    :param config: the loaded gateway configuration.
    :return: ``None``. A command name another plugin (or the core) uses stops with one
        line.
    """


# --- HTTP ---------------------------------------------------------------------------


@hookspec
def register_routes(app: Quart, config: GatewayConfig) -> Blueprint | list[Blueprint] | None:
    """Contribute extra HTTP routes.

    Called once while the app is created, before it serves.

    :param app: the Quart application (read ``app.extensions``; do not register blueprints
        on it yourself).
    :param config: the loaded gateway configuration.
    :return: a Quart ``Blueprint`` or a list of them (or ``None``). The core registers
        them; a blueprint name or a URL rule used twice stops startup. A view marked
        ``@gateway.direct_routes.direct`` is answered before Quart's request pipeline
        (a webhook asked under a deadline); its path must be exact.
    """


@hookspec
def authenticate(
    request: Request, config: GatewayConfig
) -> Principal | Awaitable[Principal | None] | None:
    """Identify who sent a request.

    Called at most once per request, when a route needs a principal. Implementations run
    in the order of the module docstring (the core's own one last); the first one that
    returns a value other than ``None`` wins and the rest do not run.

    :param request: the current Quart request (headers and cookies; do not read the body).
    :param config: the loaded gateway configuration.
    :return: a :class:`gateway.auth.Principal`, or ``None`` when these credentials are
        not yours. Raise :class:`gateway.errors.Unauthorized` when they are yours but bad
        (expired, tampered): that ends authentication with a 401.
    """


@hookspec
def lookup_contact(
    team: Team, phone: str, config: GatewayConfig
) -> dict[str, Any] | Awaitable[dict[str, Any] | None] | None:
    """Find who is calling, for the personalization hot path.

    Called per inbound call under one deadline shared by all implementations, in the
    order of the module docstring; one that misses it or raises is skipped (and logged).
    The first result other than ``None`` wins and the rest do not run. Callers may cache
    the answer, "nobody" included, per (team, phone) for a while
    (:class:`gateway.contacts.ContactCache`): do not count on being asked for every call,
    and make the implementation ``async`` (a blocking one cannot be cut at the deadline).

    The core's own implementation (``trylast``, in :mod:`gateway.sync.plugin`) asks the
    team's connected CRMs (``register_crms``) in registration order and answers with the
    first contact found, with ``"source"`` (the CRM's name) and ``"id"`` (its contact id)
    besides the details; it must run in an app context and stops at once when the
    caller cancels it at the deadline.

    :param team: the :class:`gateway.identity.models.Team` that owns the called number.
    :param phone: the caller's number in E.164.
    :param config: the loaded gateway configuration.
    :return: a dict of contact details (``name``, ``email``, ``company``, ...; say which
        system answered in ``source``) or ``None``.
    """


# --- lifecycle ----------------------------------------------------------------------


@hookspec
def startup(app: Quart, config: GatewayConfig) -> Awaitable[None] | None:
    """Start background work and open plugin resources.

    Called once per process when the app starts serving (Quart's ``before_serving``),
    after the database is open and migrated and the shared HTTP session exists, in the
    order of the module docstring (the job worker starts last). May be ``async def``;
    each implementation is awaited before the next runs.

    :param app: the Quart application; keep plugin state in ``app.extensions[<name>]``.
    :param config: the loaded gateway configuration.
    :return: nothing. An exception stops startup (the server does not start).
    """


@hookspec
def shutdown(app: Quart, config: GatewayConfig) -> Awaitable[None] | None:
    """Stop background work and release plugin resources.

    Called once per process when the app stops serving (Quart's ``after_serving``), before
    the shared HTTP session and the database are closed, in the order of the module
    docstring (the job worker stops first). May be ``async def``; each implementation is
    awaited before the next runs.

    :param app: the Quart application.
    :param config: the loaded gateway configuration.
    :return: nothing. Exceptions are logged and do not stop other plugins' shutdown.
    """
