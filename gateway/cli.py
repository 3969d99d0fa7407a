"""The ``gateway`` command.

Every subcommand loads the configuration the same way (``--config``, before or after
the subcommand; else ``GATEWAY_CONFIG``; else ``./plugins.toml``). A
:class:`~gateway.errors.StartupError` anywhere is printed as one line on stderr and
exits with status 2. With ``log_format = "json"`` every line on stdout and stderr is a
JSON object, the command's own output included.

Plugins add commands through the ``register_commands`` hook. Only an invocation whose
command is not one of the core's (or ``gateway --help``) loads the configuration and
the enabled plugins before parsing, so the core's commands (``serve`` binding its port
first) start exactly as they would without plugins.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from gateway.commands import print_json as print_json  # the name commands used before
from gateway.config import GatewayConfig, load_config
from gateway.errors import StartupError

# Modules that add subcommands: each has ``add_commands(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = (
    "gateway.cli_core",
    "gateway.identity.cli",
    "gateway.oauth.cli",
    "gateway.jobs.cli",
    "gateway.scheduling.cli",
    "gateway.storage.cli",
)

CONFIG_HELP = "path to plugins.toml (default: $GATEWAY_CONFIG, else ./plugins.toml)"


def gateway_version() -> str:
    try:
        return version("renchi-gateway")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _accept_config_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--config`` after any (sub)subcommand too. SUPPRESS keeps a value given before
    the subcommand when none is given after it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if not any("--config" in a.option_strings for a in sub._actions):
                    sub.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
                _accept_config_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {gateway_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        import_module(module_name).add_commands(sub)
    _accept_config_everywhere(parser)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _command_and_config(argv: list[str]) -> tuple[str | None, str | None]:
    """The first word that is not an option (the command) and the last ``--config``
    value, read before parsing."""
    command, config, take_value = None, None, False
    for word in argv:
        if take_value:
            config, take_value = word, False
        elif word == "--config":
            take_value = True
        elif word.startswith("--config="):
            config = word.partition("=")[2]
        elif command is None and not word.startswith("-"):
            command = word
    return command, config


def add_plugin_commands(parser: argparse.ArgumentParser, config: GatewayConfig) -> None:
    """Let the enabled plugins add their commands (``register_commands``).

    :raises StartupError: a plugin failed to load, or took a command name in use.
    """
    import gateway.app  # the plugin manager is built exactly as for the app
    from gateway.dispatch import call_each_sync

    pm = gateway.app.build_plugin_manager(config)
    try:
        call_each_sync(pm, "register_commands", subparsers=_subparsers(parser), config=config)
    except argparse.ArgumentError as exc:
        raise StartupError(f"a plugin's command: {exc}") from None
    _accept_config_everywhere(parser)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    command, config_path = _command_and_config(argv)
    preloaded: GatewayConfig | None = None
    if command is None or command not in _subparsers(parser).choices:
        try:
            preloaded = load_config(config_path)
            add_plugin_commands(parser, preloaded)
        except StartupError as exc:
            if command is not None:  # `gateway --help` still works with a broken config
                print(f"gateway: {exc}", file=sys.stderr)
                return 2
    args = parser.parse_args(argv)
    streams = sys.stdout, sys.stderr
    try:
        config = preloaded or load_config(args.config)
        from gateway.logs import JsonLines, configure_logging

        configure_logging(config.gateway.log_format, config.gateway.log_level)
        if config.gateway.log_format == "json":
            sys.stdout = JsonLines(sys.stdout, level="INFO")
            sys.stderr = JsonLines(sys.stderr, level="ERROR")
        return int(args.handler(args, config) or 0)
    except StartupError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `gateway config | head`: the reader left, nothing to say
        # As the Python docs advise: point stdout at devnull so the exit flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), streams[0].fileno())
        return 141
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BrokenPipeError):
                stream.flush()
        sys.stdout, sys.stderr = streams


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
