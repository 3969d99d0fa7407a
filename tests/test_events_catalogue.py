"""docs/events.md is the catalogue plugin authors read: every event type the code emits
is in it, and every typed payload's table matches its model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.calls.events import CATALOGUE, CollectedValue, EvaluationResult
from gateway.events import EventPayload, payload_table

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "events.md").read_text()
# How the code names the types it emits: EVENT_TYPE constants (webhook sources) and the
# neutral constants next to the payload models.
CONSTANT = re.compile(r"^\s*(?:EVENT_TYPE|[A-Z_]+)\s*=\s*\"([a-z_]+(?:\.[a-z_]+)+)\"", re.M)


def emitted_types() -> set[str]:
    found: set[str] = set()
    for folder in ("gateway", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if "EVENT_TYPE" in text or "EventPayload" in text:
                found |= set(CONSTANT.findall(text))
    return found


def test_the_scan_finds_the_known_emitters():
    assert {"voice.call.status", "voice.recording.status", "voice.call.incoming"} <= (
        emitted_types()
    )
    assert set(CATALOGUE) <= emitted_types()


@pytest.mark.parametrize("event_type", sorted(emitted_types() | set(CATALOGUE)))
def test_every_emitted_type_has_its_section(event_type):
    assert f"### `{event_type}`" in DOC, f"docs/events.md has no section for {event_type}"
    assert f"| `{event_type}` |" in DOC, f"docs/events.md's table does not list {event_type}"


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_payload_tables_match_the_models(event_type):
    model = CATALOGUE[event_type]
    assert issubclass(model, EventPayload) and model.EVENT_TYPE == event_type
    section = DOC.split(f"### `{event_type}`", 1)[1]
    assert payload_table(model) in section, (
        f"the payload table of {event_type} is stale: run `python -m gateway.events`"
    )


@pytest.mark.parametrize("model", [CollectedValue, EvaluationResult])
def test_nested_tables_match(model):
    assert payload_table(model) in DOC.split(f"#### {model.__name__}", 1)[1]
