"""Completion webhooks on both dialects: dispatch from the outbox, signed
deliveries to a loopback receiver, retries with backoff, filters, the egress
policy, and the events on the task announced."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from standardwebhooks import Webhook

from falsework import webhooks
from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.runner import as_executor
from falsework.taskio import TaskInput, TaskIO
from falsework.wiring import webhook_services, worker_options
from support.engine import open_broker, wait_final, wait_for
from support.receiver import SECRET, Receiver, receiving, signed_by_hand

SECRET_ENV = "FALSEWORK_TEST_HOOK_SECRET"


async def _run(task: TaskInput, io: TaskIO) -> dict[str, Any]:
    if task.spec.get("fail"):
        raise RuntimeError("the step broke")
    return {"links": [{"title": "Repository", "url": "https://example.com/repo"}]}


def _hook(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "secret_env": SECRET_ENV, **extra}


@contextlib.asynccontextmanager
async def running(broker: Broker, settings: Settings) -> AsyncIterator[TaskWorker]:
    """A worker running ``_run`` with the webhooks of ``settings``, and its dispatcher."""
    dispatcher, deliveries = webhook_services(settings, broker)
    worker = TaskWorker(broker, deliveries.wrap(as_executor(_run)), worker_options(settings))
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(dispatcher.run())]
    try:
        yield worker
    finally:
        await worker.stop()
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _spec(name: str = "demo", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": [],
        "templateInfo": {"entityRef": f"template:default/{name}"},
        **extra,
    }


async def _hook_events(broker: Broker, task_id: str) -> list[dict[str, Any]]:
    return [e.body["webhook"] for e in await broker.events(task_id) if "webhook" in e.body]


@pytest.fixture
def receiver() -> Any:
    with receiving() as r:
        yield r


@pytest.fixture
def hook_settings(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def make(hooks: list[dict[str, Any]], **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "webhooks": hooks,
            "egress": {"allow": ["127.0.0.1"]},
            "webhook_retry_base": 0.05,
            "webhook_retry_max": 0.2,
            "webhook_timeout": 5.0,
            **overrides,
        }
        return make_settings(**values)

    return make


async def test_a_completed_task_is_delivered_signed_after_a_retry(
    database_url: str, receiver: Receiver, hook_settings: Callable[..., Settings]
) -> None:
    receiver.script = [500]
    settings = hook_settings([_hook(receiver.url)])
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            task = await broker.create(_spec(), created_by="user:default/ann")
            assert (await wait_final(broker, task.id)).status == "completed"
            await wait_for(lambda: len(receiver.received) >= 2)

            async def delivered() -> bool:
                return any(h["outcome"] == "delivered" for h in await _hook_events(broker, task.id))

            await wait_for(delivered)
        first, second = receiver.received[:2]
        assert all(r.verified and r.by_hand for r in receiver.received)
        # one delivery: the same id and the same bytes on every try
        assert first.id == second.id
        assert first.body == second.body
        assert len(receiver.received) == 2
        body = first.json
        assert body["id"] == first.id
        assert body["type"] == "task.completed"
        assert body["data"]["taskId"] == task.id
        assert body["data"]["status"] == "completed"
        assert body["data"]["template"] == "template:default/demo"
        assert body["data"]["createdBy"] == "user:default/ann"
        assert body["data"]["output"]["links"][0]["url"] == "https://example.com/repo"
        outcomes = [(h["try"], h["outcome"]) for h in await _hook_events(broker, task.id)]
        assert outcomes == [(1, "retrying"), (2, "delivered")]
        # the announced task's events name the receiver without the URL's query
        messages = [e.body["message"] for e in await broker.events(task.id)]
        assert not any("token=abc" in m for m in messages)
        assert not any(SECRET in str(e.body) for e in await broker.events(task.id))
        # each try is a task: the first failed, the second completed
        tries, _ = await broker.list(limit=10, order="asc:created_at")
        deliveries = [t for t in tries if webhooks.is_delivery(t.spec)]
        assert [t.status for t in deliveries] == ["failed", "completed"]
        assert all(SECRET not in str(t.spec) for t in deliveries)
    finally:
        await broker.close()


async def test_events_and_templates_choose_the_receivers(
    database_url: str, receiver: Receiver, hook_settings: Callable[..., Settings]
) -> None:
    settings = hook_settings(
        [
            _hook(receiver.url, name="failures", events=["failed"]),
            _hook(receiver.url, name="cancels-of-demo", events=["cancelled"], templates=["demo"]),
            _hook(receiver.url, name="all-of-web", templates=["template:default/web-*"]),
        ]
    )
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            broken = await broker.create(_spec("demo", fail=True))
            done = await broker.create(_spec("web-app"))
            await wait_final(broker, broken.id)
            await wait_final(broker, done.id)
            cancelled = await broker.create(_spec("demo"), run_after=_later())
            await broker.cancel(cancelled.id)
            await wait_for(lambda: len(receiver.received) >= 3)
            await asyncio.sleep(0.5)  # nothing more arrives
        seen = sorted((r.json["type"], r.json["data"]["taskId"]) for r in receiver.received)
        assert seen == sorted(
            [
                ("task.failed", broken.id),
                ("task.cancelled", cancelled.id),
                ("task.completed", done.id),
            ]
        )
        failed = next(r.json for r in receiver.received if r.json["type"] == "task.failed")
        assert failed["data"]["error"] == {"name": "Error", "message": "the step broke"}
    finally:
        await broker.close()


async def test_the_egress_policy_applies_and_a_delivery_gives_up(
    database_url: str, receiver: Receiver, hook_settings: Callable[..., Settings]
) -> None:
    # loopback is denied unless allowed: nothing reaches the receiver
    settings = hook_settings([_hook(receiver.url)], egress={}, webhook_max_tries=2)
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            task = await broker.create(_spec())
            await wait_final(broker, task.id)

            async def given_up() -> bool:
                return any(h["outcome"] == "failed" for h in await _hook_events(broker, task.id))

            await wait_for(given_up)
        assert receiver.received == []
        events = await _hook_events(broker, task.id)
        assert [(h["try"], h["outcome"]) for h in events] == [(1, "retrying"), (2, "failed")]
        last = [e.body["message"] for e in await broker.events(task.id)][-1]
        assert "egress policy" in last and "given up after try 2" in last
    finally:
        await broker.close()


async def test_a_missing_secret_is_said_and_nothing_is_sent(
    database_url: str,
    receiver: Receiver,
    hook_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = hook_settings([_hook(receiver.url)], webhook_max_tries=1)
    monkeypatch.delenv(SECRET_ENV)
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            task = await broker.create(_spec())
            await wait_final(broker, task.id)
            await wait_for(lambda: _has_hook_event(broker, task.id))
        (event,) = await _hook_events(broker, task.id)
        assert event["outcome"] == "failed"
        messages = [e.body["message"] for e in await broker.events(task.id)]
        assert any(f"{SECRET_ENV} (its secret_env) is not set" in m for m in messages)
        assert receiver.received == []
    finally:
        await broker.close()


async def test_two_secrets_sign_side_by_side_while_one_replaces_the_other(
    database_url: str,
    receiver: Receiver,
    hook_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new = "whsec_" + base64.b64encode(b"the-next-secret-of-this-receiver!").decode()
    monkeypatch.setenv(SECRET_ENV, f"{SECRET} {new}")
    settings = hook_settings([_hook(receiver.url)])
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            task = await broker.create(_spec())
            await wait_final(broker, task.id)
            await wait_for(lambda: len(receiver.received) == 1)
        (got,) = receiver.received
        # a receiver that knows either secret verifies the request
        for secret in (SECRET, new):
            Webhook(secret).verify(got.body, got.headers, json_parse=False)
            assert signed_by_hand(secret, got.headers, got.body)
        assert len(got.headers["webhook-signature"].split(" ")) == 2
    finally:
        await broker.close()


async def test_a_receiver_that_does_not_answer_in_time_fails_the_try(
    database_url: str, receiver: Receiver, hook_settings: Callable[..., Settings]
) -> None:
    receiver.script = ["hold"]
    settings = hook_settings([_hook(receiver.url)], webhook_timeout=0.5, webhook_max_tries=1)
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            task = await broker.create(_spec())
            await wait_final(broker, task.id)
            await wait_for(lambda: _has_hook_event(broker, task.id))
        (event,) = await _hook_events(broker, task.id)
        assert event["outcome"] == "failed"
        last = [e.body["message"] for e in await broker.events(task.id)][-1]
        assert "no answer within 0.5s; given up after try 1" in last
        assert len(receiver.received) == 1
    finally:
        await broker.close()


async def _has_hook_event(broker: Broker, task_id: str) -> bool:
    return bool(await _hook_events(broker, task_id))


async def test_dispatch_is_idempotent_and_a_retried_task_is_announced_again(
    database_url: str, receiver: Receiver, hook_settings: Callable[..., Settings]
) -> None:
    settings = hook_settings([_hook(receiver.url, events=["cancelled"])])
    broker = await open_broker(database_url, settings)
    try:
        dispatcher, _ = webhook_services(settings, broker)
        task = await broker.create(_spec(), run_after=_later())
        await broker.cancel(task.id)
        # two dispatchers at once (two nodes): one delivery
        await asyncio.gather(dispatcher.dispatch(), dispatcher.dispatch())
        assert await dispatcher.dispatch() == 0  # the outbox is empty
        await broker.retry(task.id)
        await broker.cancel(task.id)
        assert await dispatcher.dispatch() == 1
        listed, _ = await broker.list(limit=10, order="asc:created_at")
        deliveries = [t for t in listed if webhooks.is_delivery(t.spec)]
        assert len(deliveries) == 2
        ids = {str(t.spec["webhook"]["deliveryId"]) for t in deliveries}  # type: ignore[index]
        assert len(ids) == 2
        # the deliveries finish, and are not announced themselves
        for d in deliveries:
            await broker.cancel(d.id)
        assert await dispatcher.dispatch() == 2
        listed, _ = await broker.list(limit=10)
        assert len([t for t in listed if webhooks.is_delivery(t.spec)]) == 2
    finally:
        await broker.close()


def _later() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(hours=1)


def test_a_webhook_url_must_be_http_without_credentials(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ValueError, match="is not an http"):
        make_settings(webhooks=[{"url": "ftp://example.com/x", "secret_env": "X"}])
    with pytest.raises(ValueError, match="no user or password"):
        make_settings(webhooks=[{"url": "https://u:p@example.com/x", "secret_env": "X"}])
    with pytest.raises(ValueError, match="named"):
        make_settings(
            webhooks=[
                {"url": "https://example.com/x", "secret_env": "X"},
                {"url": "https://example.com/x?b=1", "secret_env": "Y"},
            ]
        )
    with pytest.raises(ValueError, match="events"):
        make_settings(
            webhooks=[{"url": "https://example.com/x", "secret_env": "X", "events": ["done"]}]
        )


def test_backoff_doubles_up_to_its_ceiling(hook_settings: Callable[..., Settings]) -> None:
    settings = hook_settings([], webhook_retry_base=10, webhook_retry_max=60)
    _, deliveries = webhook_services(settings, None)  # type: ignore[arg-type]
    assert [deliveries.backoff(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


async def test_webhooks_configured_later_announce_only_later_finishes(
    database_url: str,
    receiver: Receiver,
    hook_settings: Callable[..., Settings],
    make_settings: Callable[..., Settings],
) -> None:
    """A task that ended while no webhook was configured (here cancelled on a node
    without a worker, so no dispatcher ran) is not announced when webhooks are
    configured later; one that ends after is."""
    before = await open_broker(database_url, make_settings())
    try:
        old = await before.create(_spec(), run_after=_later())
        await before.cancel(old.id)
    finally:
        await before.close()
    settings = hook_settings([_hook(receiver.url)])
    broker = await open_broker(database_url, settings)
    try:
        async with running(broker, settings):
            new = await broker.create(_spec())
            await wait_final(broker, new.id)
            await wait_for(lambda: len(receiver.received) >= 1)
            await asyncio.sleep(0.5)  # nothing more arrives
        assert [r.json["data"]["taskId"] for r in receiver.received] == [new.id]
        assert await _hook_events(broker, old.id) == []
    finally:
        await broker.close()
