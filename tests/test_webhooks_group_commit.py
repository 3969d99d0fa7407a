"""Group commit as senders see it: webhooks arriving together share one transaction,
yet each is answered only after its own events are committed, and one bad delivery
or a dead database never costs another sender its event (gateway/webhooks/group_commit.py)."""

from __future__ import annotations

import asyncio

from tortoise import connections

from gateway.jobs.models import Job
from gateway.webhooks.models import WebhookEvent
from tests.support.identity import make_user, token_for
from tests.support.webhook_plugin import PATH, TestPlugin, delivery


async def start(make_app, db="sqlite"):
    plugin = TestPlugin()
    app = await make_app(db=db, extra_plugins=[("testhooks", plugin)])
    return app.test_client(), plugin


async def until(condition) -> None:
    """Yield to the event loop until ``condition()`` holds (bounded; no wall-clock wait)."""
    for _ in range(10_000):
        if await condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def send(client, event_id, **extra):
    body, headers = delivery({"id": event_id, "type": "thing.x", **extra})
    return await client.post(PATH, data=body, headers=headers)


async def commit_stats(client) -> dict:
    admin = await make_user("root@example.com", super_admin=True)
    response = await client.get("/api/webhooks/stats", headers=await token_for(admin))
    return (await response.get_json())["group_commit"]


async def held_batch(client, plugin, ids):
    """Send ``ids[0]`` and hold its transaction open inside ``apply`` until the rest
    have queued behind it, so they are stored together as the next batch."""
    plugin.apply_gate = asyncio.Event()
    first = asyncio.create_task(send(client, ids[0]))
    await plugin.apply_entered.wait()
    rest = [asyncio.create_task(send(client, i)) for i in ids[1:]]
    group = client.app.extensions["gateway_webhook_group_commit"]

    async def all_queued() -> bool:
        return len(group._queue) == len(rest)

    await until(all_queued)
    plugin.apply_gate.set()
    return await asyncio.gather(first, *rest)


async def test_concurrent_webhooks_share_a_transaction_and_each_is_stored(make_app, db_kind):
    client, plugin = await start(make_app, db_kind)
    ids = [f"g{n}" for n in range(12)]
    responses = await held_batch(client, plugin, ids)
    assert [r.status_code for r in responses] == [200] * 12
    assert sorted(await WebhookEvent.all().values_list("dedup_key", flat=True)) == sorted(ids)
    assert await Job.all().count() == 12
    stats = await commit_stats(client)
    # The first alone, then the eleven that queued behind it in one transaction.
    assert (stats["transactions"], stats["deliveries"], stats["largest"]) == (2, 12, 11)


async def test_one_bad_delivery_in_a_batch_fails_alone(make_app):
    client, plugin = await start(make_app)
    plugin.apply_error_ids = {"bad"}
    responses = await held_batch(client, plugin, ["a0", "a1", "bad", "a2", "a3"])
    assert [r.status_code for r in responses] == [200, 200, 500, 200, 200]
    stored = await WebhookEvent.all().values_list("dedup_key", flat=True)
    assert sorted(stored) == ["a0", "a1", "a2", "a3"]
    assert (await commit_stats(client))["split"] == 1


async def test_database_failure_under_a_batch_answers_every_sender_503(make_app, db_kind):
    client, plugin = await start(make_app, db_kind)
    conn = connections.get("default")
    ids = [f"d{n}" for n in range(6)]
    await conn.execute_script("ALTER TABLE jobs RENAME TO jobs_away")
    try:
        responses = await held_batch(client, plugin, ids)
    finally:
        await conn.execute_script("ALTER TABLE jobs_away RENAME TO jobs")
    assert [r.status_code for r in responses] == [503] * 6
    assert {(await r.get_json())["code"] for r in responses} == {"SERVICE_UNAVAILABLE"}
    assert await WebhookEvent.all().count() == 0
    retries = await asyncio.gather(*(send(client, i) for i in ids))  # the senders retry
    assert [r.status_code for r in retries] == [200] * 6
    assert await WebhookEvent.all().count() == 6 and await Job.all().count() == 6


async def test_a_sender_that_hangs_up_still_gets_its_event_stored_once(make_app):
    client, plugin = await start(make_app)
    plugin.apply_gate = asyncio.Event()
    request = asyncio.create_task(send(client, "h1"))
    await plugin.apply_entered.wait()
    request.cancel()  # the connection dropped while the transaction was open
    plugin.apply_gate.set()
    await until(WebhookEvent.filter(dedup_key="h1").exists)
    redelivery = await send(client, "h1")  # the sender never saw a 2xx, so it retries
    assert redelivery.status_code == 200
    assert await WebhookEvent.filter(dedup_key="h1").count() == 1
    assert plugin.applied == ["h1"] and await Job.all().count() == 1


async def test_stopping_mid_transaction_tells_the_sender_to_retry(make_app):
    """The storing task cancelled while a transaction is open (the process is going
    down): nothing is committed and the waiting sender gets a 503, not silence."""
    client, plugin = await start(make_app)
    plugin.apply_gate = asyncio.Event()
    request = asyncio.create_task(send(client, "s1"))
    await plugin.apply_entered.wait()
    client.app.extensions["gateway_webhook_group_commit"]._task.cancel()
    response = await request
    assert response.status_code == 503
    assert (await response.get_json())["code"] == "SERVICE_UNAVAILABLE"
    assert await WebhookEvent.all().count() == 0
    plugin.apply_gate.set()
    assert (await send(client, "s1")).status_code == 200  # the retry is stored
    assert await WebhookEvent.filter(dedup_key="s1").count() == 1


async def test_stopping_while_a_failed_batch_is_retried_one_by_one_answers_everyone():
    """The class on its own, with a store that fails any batch of more than one and
    then hangs on the first single retry: cancelling it (shutdown) must answer every
    waiting sender 503, including those whose turn never came."""
    from gateway.errors import ServiceUnavailable
    from gateway.webhooks.group_commit import GroupCommit
    from gateway.webhooks.store import Delivery, Stored

    hang = asyncio.Event()

    async def store(batch):
        if len(batch) > 1:
            raise RuntimeError("one of them is poisoned")
        await hang.wait()
        return [Stored()]

    group = GroupCommit(store)
    senders = [asyncio.create_task(group.submit(Delivery(None, []))) for _ in range(3)]

    async def retrying_alone() -> bool:
        return group.counters["split"] == 1

    await until(retrying_alone)
    group._task.cancel()
    # A bound only so that a regression fails instead of hanging the suite.
    results = await asyncio.wait_for(asyncio.gather(*senders, return_exceptions=True), 10)
    assert [type(r) for r in results] == [ServiceUnavailable] * 3


async def test_overlapping_batches_in_concurrent_transactions(make_app, db_kind):
    """Two processes' batches sharing events, in opposite orders, committing at the same
    time (on PostgreSQL these transactions really overlap): no error, no deadlock, each
    event stored, applied and queued once."""
    from gateway.webhooks.source import ParsedEvent
    from gateway.webhooks.store import Delivery, store_batch

    plugin = TestPlugin()
    app = await make_app(db=db_kind, extra_plugins=[("testhooks", plugin)])
    gw = app.extensions["gateway"]
    source = gw.registry("register_webhook_sources")["test.events"]

    def batch(*ids):
        events = [ParsedEvent(type="thing.x", dedup_key=i, payload={"id": i}) for i in ids]
        return [Delivery(source, events)]

    first, second = await asyncio.gather(
        store_batch(batch("o1", "o2", "o3"), gw), store_batch(batch("o3", "o2", "o4"), gw)
    )
    assert first[0].new + second[0].new == 4
    assert sorted(plugin.applied) == ["o1", "o2", "o3", "o4"]
    assert await WebhookEvent.all().count() == 4 and await Job.all().count() == 4
