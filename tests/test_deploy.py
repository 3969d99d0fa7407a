"""deploy/compose.yaml without a container engine: every gateway service runs a real
``gateway`` command with valid options, mounts deploy/plugins.toml where GATEWAY_CONFIG
says, and that config (with the environment compose would give the service) passes
``gateway check --role <its role>``: offline for each service, and for real against this
run's PostgreSQL, Redis and local S3 after running the migrate service's own command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import build_parser, main
from gateway.secrets import new_fernet_key

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
GATEWAY_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if str(service.get("image", "")).startswith("renchi-gateway")
}
# What each command is, as a role of docs/operations.md#roles.
ROLE_OF = {"serve": "api", "worker": "worker", "scheduler": "scheduler", "migrate": None}
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}")


def test_the_deployment_has_every_role():
    commands = sorted(service["command"][1] for service in GATEWAY_SERVICES.values())
    assert commands == ["migrate", "scheduler", "serve", "serve", "worker"]
    assert {"postgres", "redis", "minio"} <= set(COMPOSE["services"])
    migrate = GATEWAY_SERVICES["migrate"]
    assert migrate["restart"] == "no"  # one-shot
    for name, service in GATEWAY_SERVICES.items():
        if name != "migrate":
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully"


def compose_values() -> dict[str, str]:
    """What an operator puts in deploy/.env: a value for every variable compose needs."""
    values = {}
    for var in sorted(set(_VAR.findall((DEPLOY / "compose.yaml").read_text()))):
        name, kind, _ = var
        values[name] = "" if kind == "-" else f"test-{name.lower()}-0123456789"
    values["GATEWAY_ENCRYPTION_KEY"] = new_fernet_key()
    values["GATEWAY_PUBLIC_URL"] = "https://gateway.example.com"
    return values


def interpolate(value: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind, default = match.groups()
        if values.get(name):
            return values[name]
        if kind == "?":
            raise AssertionError(f"compose would refuse: {default}")
        return default or ""

    return _VAR.sub(one, value)


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    values = compose_values()
    return {k: interpolate(str(v), values) for k, v in service["environment"].items()}


def messages(out: str) -> list[str]:
    """The command's lines (the deployed config logs JSON: one object per line)."""
    return [json.loads(line)["message"] for line in out.splitlines()]


def mounted_config(service: dict[str, Any]) -> Path:
    env = service["environment"]
    for volume in service["volumes"]:
        host, container, *_ = volume.split(":")
        if container == env["GATEWAY_CONFIG"]:
            return (DEPLOY / host).resolve()
    raise AssertionError("the config file named by GATEWAY_CONFIG is not mounted")


@pytest.mark.parametrize("name", sorted(GATEWAY_SERVICES))
def test_each_service_runs_a_real_command_and_its_config_fits_its_role(
    name, monkeypatch, capsys, tmp_path
):
    service = GATEWAY_SERVICES[name]
    program, *argv = service["command"]
    assert program == "gateway"
    parser = build_parser()
    if argv[0] not in parser._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        pytest.skip(f"`gateway {argv[0]}` is not part of this build yet")
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{name}: `gateway {' '.join(argv)}` is not a valid command line")
    if args.command == "serve":  # an API replica: reachable, and no job worker inside
        assert (args.host, args.no_worker, args.workers) == ("0.0.0.0", True, 1)

    config = mounted_config(service)
    for key, value in service_environment(service).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))  # the image's /data
    role = ROLE_OF[args.command]
    check = ["--config", str(config), "check", "--offline"]
    rc = main(check + (["--role", role] if role else []))
    out, err = capsys.readouterr()
    assert rc == 0, err
    if role:
        assert messages(out)[-1] == f"role {role}: fit for several replicas"
    assert not (tmp_path / "data").exists()


@pytest.mark.postgres
def test_the_api_config_reaches_this_runs_services(
    pg_database, moto_server, monkeypatch, capsys, tmp_path
):
    """The migrate service's command against this run's PostgreSQL, then the API's check
    with the addresses swapped for this machine's services."""
    from tests.conftest import REDIS_URL

    service = GATEWAY_SERVICES["api-1"]
    for key, value in service_environment(service).items():
        monkeypatch.setenv(key, value)
    bucket = moto_server.new_bucket()
    for key, value in {
        "GATEWAY_DATABASE_URL": pg_database,
        "GATEWAY_RATE_LIMIT_STORAGE": REDIS_URL,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": moto_server.url,
    }.items():
        monkeypatch.setenv(key, value)
    config = str(mounted_config(service))
    assert main(["--config", config, *GATEWAY_SERVICES["migrate"]["command"][1:]]) == 0
    capsys.readouterr()
    assert main(["--config", config, "check", "--role", "api"]) == 0
    out = messages(capsys.readouterr().out)
    assert "rate limits: redis ok" in out
    assert f"recordings: s3 bucket '{bucket}' ok" in out
    assert out[-1] == "role api: fit for several replicas"
