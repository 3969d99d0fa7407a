"""The ``gateway`` command.

Every subcommand loads the configuration the same way (``--config``, ``GATEWAY_CONFIG``,
``./plugins.toml``). A :class:`~gateway.errors.StartupError` anywhere is printed as one
line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module
from typing import Any

from gateway.config import load_config
from gateway.errors import StartupError

# Modules that add subcommands: each has ``add_commands(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = (
    "gateway.cli_core",
    "gateway.identity.cli",
    "gateway.oauth.cli",
    "gateway.jobs.cli",
    "gateway.scheduling.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="path to plugins.toml (default: $GATEWAY_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        import_module(module_name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        from gateway.logs import configure_logging

        configure_logging(config.gateway.log_format, config.gateway.log_level)
        return int(args.handler(args, config) or 0)
    except StartupError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
