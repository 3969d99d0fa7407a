"""Log output: JSON lines with the request id, and no secret on any line."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.logs import configure_logging, redactor, request_id_var


@pytest.fixture
def json_logs(capsys):
    # The handler is installed by each test: sys.stderr is only capsys' stream while the
    # test body runs.
    yield capsys
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gateway", False):
            root.removeHandler(handler)


def test_json_lines_carry_the_request_id(json_logs):
    configure_logging("json", "INFO")
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("gateway.test").warning("hello %s", "world")
    finally:
        request_id_var.reset(token)
    line = json_logs.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "hello world"
    assert record["request_id"] == "req-42"
    assert record["level"] == "WARNING"


def test_registered_secret_is_blanked_in_messages_and_tracebacks(json_logs):
    secret = "sk_live_abcdef0123456789"
    configure_logging("json", "INFO")
    redactor.add(secret)
    log = logging.getLogger("gateway.test")
    log.error("token was %s", secret)
    try:
        raise ValueError(f"bad {secret}")
    except ValueError:
        log.exception("failed")
    err = json_logs.readouterr().err
    assert secret not in err
    assert err.count("**********") >= 2
