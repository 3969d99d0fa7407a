"""The effects ledger on both back ends: one job at a time per effect, the marker, a
dead job's "sent" left for the next attempt, and done effects never redone."""

from __future__ import annotations

import pytest

from gateway.events import RetryLater
from gateway.sync import ledger
from gateway.sync.models import Effect
from tests.support.identity import make_team


async def test_an_effect_is_claimed_by_one_job_at_a_time(any_app, clock):
    team = await make_team("Acme")
    key = {"subject": "event:7", "plugin": "cal", "action": "create_event", "team_id": team.id}
    async with ledger.effect(any_app, **key) as first:
        assert not first.done and not first.sent
        assert first.marker == ledger.marker_for("event:7", "cal", "create_event")
        assert first.marker.isalnum() and first.marker.startswith("rgw")
        with pytest.raises(RetryLater) as waited:
            async with ledger.effect(any_app, **key):
                pass  # pragma: no cover - never entered
        assert waited.value.count_attempt is False
        await first.sending()
        await first.remember(contact_id="c1")
    # Released: the next attempt takes it and knows a request went out.
    async with ledger.effect(any_app, **key) as second:
        assert second.sent and second.data == {"contact_id": "c1"}
        await second.created("evt-1", "https://cal.example/evt-1")
    async with ledger.effect(any_app, **key) as third:
        assert third.done and third.provider_id == "evt-1"
    row = await Effect.get(subject="event:7")
    assert (row.status, row.attempts, row.team_id) == ("done", 2, team.id)


async def test_a_dead_workers_claim_runs_out_with_the_job_lease(any_app, clock):
    key = {"subject": "analysis:1", "plugin": "crm", "action": "log_call"}
    claimed = ledger.effect(any_app, **key)
    handle = await claimed.__aenter__()
    await handle.sending()  # ... and the worker dies here: no __aexit__
    with pytest.raises(RetryLater):
        async with ledger.effect(any_app, **key):
            pass  # pragma: no cover
    clock.advance(any_app.extensions["gateway"].config.gateway.job_lease_seconds + 1)
    async with ledger.effect(any_app, **key) as again:
        assert again.sent and not again.done
        await again.skip("not connected")
    # Skipped is not final: a replay after connecting tries again.
    async with ledger.effect(any_app, **key) as later:
        assert not later.done and later.sent


async def test_markers_differ_per_effect():
    a = ledger.marker_for("analysis:1", "hubspot", "log_call")
    b = ledger.marker_for("analysis:1", "salesforce", "log_call")
    c = ledger.marker_for("analysis:2", "hubspot", "log_call")
    assert len({a, b, c}) == 3 and all(len(m) == 32 for m in (a, b, c))
