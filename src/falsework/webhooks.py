"""Completion webhooks: receivers told when tasks end, each delivery a durable task.

**Dispatch.** A task that finishes (completed, failed, cancelled, by a worker, a
cancel or the janitor) is in the outbox (``tasks.finished_at`` differs from
``tasks.hooked_at``) until a ``Dispatcher`` has created one delivery task per
configured receiver that wants it, then marked it. Creating the deliveries and
marking the task are two statements: a dispatcher that dies between them leaves
the task in the outbox, and the next one creates the same deliveries again, which
their idempotency keys (receiver, task, finish time) turn into no-ops. So a
finish is never lost and never announced twice, whatever node dispatches.

**Delivery.** A delivery task is claimed like any other; ``Deliveries.wrap`` runs
it instead of the runner: one signed POST through the egress policy. A 2xx ends
it completed; anything else ends this try failed and creates the next try, due
after an exponential backoff (a task of its own, again keyed, so a worker killed
between the two leaves exactly one next try). The delivery id (``webhook-id``) is
the same on every try and every re-run after a crash: receivers deduplicate on
it. Each try's result is an event on the task it announces.

**Signature** (the Standard Webhooks scheme, ``standardwebhooks`` signs):
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature:
v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the secret in
``secret_env`` (``whsec_`` + base64, as Standard Webhooks secrets are written).
The secret is read when a delivery is sent; it is never stored, logged or put in
an event.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from falsework.actions.integrations import Integrations
from falsework.actions.policies import EgressPolicy
from falsework.engine import Broker
from falsework.engine.codec import dumps
from falsework.engine.models import FinishedTask, NewTask, iso
from falsework.errors import DatabaseUnavailableError, FalseworkError
from falsework.taskio import Executor, Outcome, TaskInput, TaskIO
from falsework.types import JSONObject

if TYPE_CHECKING:
    from falsework.config import WebhookConfig

log = logging.getLogger("falsework.webhooks")

KIND = "WebhookDelivery"
API_VERSION = "falsework.dev/v1"
# delivery ids are UUIDs derived from their idempotency keys in this namespace
NAMESPACE = uuid.UUID("6f1d3c52-7a0e-4f43-9a55-1e3b8f2c9d41")
EVENT_OF_STATUS = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}


def is_delivery(spec: JSONObject) -> bool:
    return spec.get("apiVersion") == API_VERSION and spec.get("kind") == KIND


def template_of(spec: JSONObject) -> str | None:
    info = spec.get("templateInfo")
    ref = info.get("entityRef") if isinstance(info, dict) else None
    return str(ref) if ref else None


def wants(hook: WebhookConfig, event: str, template: str | None) -> bool:
    """Whether ``hook`` is told of ``event`` for a task of ``template``: its
    ``templates`` patterns match the entity ref or the bare name."""
    if event not in hook.events:
        return False
    if hook.templates is None:
        return True
    if template is None:
        return False
    name = template.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(template, p) or fnmatch.fnmatchcase(name, p) for p in hook.templates
    )


def payload(delivery_id: str, event: str, finished: FinishedTask) -> JSONObject:
    """What a receiver gets: ``type``, ``timestamp`` and ``data`` (Standard
    Webhooks' shape) about the task; its output when it completed, its error when
    it failed; never its values or secrets."""
    task = finished.task
    data: JSONObject = {
        "taskId": task.id,
        "status": task.status,
        "template": template_of(task.spec),
        "createdBy": task.created_by,
        "createdAt": iso(task.created_at),
        "finishedAt": iso(task.finished_at),
        "attempt": task.attempt,
    }
    final = finished.final or {}
    if task.status == "completed" and "output" in final:
        data["output"] = final["output"]
    if task.status == "failed" and "error" in final:
        data["error"] = final["error"]
    return {
        "id": delivery_id,
        "type": f"task.{event}",
        "timestamp": iso(task.finished_at),
        "data": data,
    }


def delivery_spec(hook: WebhookConfig, event: str, task_id: str, key: str, body: str) -> JSONObject:
    """The spec of the first try of a delivery (``key``: its idempotency key)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        # so task lists show what it is
        "templateInfo": {
            "entityRef": f"webhook:default/{event}",
            "entity": {"metadata": {"name": "webhook", "title": f"Webhook {hook.label}"}},
        },
        "steps": [],
        "webhook": {
            "receiver": hook.label,
            "event": event,
            "taskId": task_id,
            "deliveryId": _id(key),
            "key": key,
            "try": 1,
            "body": body,  # the exact bytes every try sends
        },
    }


def _key(delivery_key: str, attempt: int) -> str:
    return delivery_key if attempt == 1 else f"{delivery_key}#try{attempt}"


def _id(key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, key))


class Dispatcher:
    """Turns finished tasks into delivery tasks (see the module's docstring)."""

    def __init__(
        self, broker: Broker, hooks: Sequence[WebhookConfig], *, interval: float, page: int = 500
    ) -> None:
        self._broker = broker
        self._hooks = tuple(hooks)
        self._interval = interval
        self._page = page

    async def dispatch(self) -> int:
        """One page of the outbox; returns how many finished tasks it took."""
        finished = await self._broker.unhooked(self._page)
        items: list[NewTask] = []
        for f in finished:
            task = f.task
            event = EVENT_OF_STATUS.get(task.status)
            if event is None or task.finished_at is None or is_delivery(task.spec):
                continue
            for hook in self._hooks:
                if not wants(hook, event, template_of(task.spec)):
                    continue
                key = f"webhook:{hook.label}:{task.id}:{task.finished_at.isoformat()}"
                delivery_id = _id(key)
                body = dumps(payload(delivery_id, event, f))
                items.append(
                    NewTask(
                        spec=delivery_spec(hook, event, task.id, key, body),
                        idempotency_key=key,
                        id=delivery_id,
                    )
                )
        if items:
            await self._broker.create_many(items)
        await self._broker.mark_hooked(
            [(f.task.id, f.task.finished_at) for f in finished if f.task.finished_at]
        )
        return len(finished)

    async def run(self) -> None:
        while True:
            try:
                full = await self.dispatch() >= self._page
            except DatabaseUnavailableError as exc:
                log.warning("database unavailable for the webhooks' outbox (%s); retrying", exc)
                full = False
            except Exception:
                log.exception("dispatching webhooks failed")
                full = False
            if not full:
                await asyncio.sleep(self._interval)


class Deliveries:
    """Runs delivery tasks (``wrap`` puts it in front of the runner's executor)."""

    def __init__(
        self,
        broker: Broker,
        hooks: Sequence[WebhookConfig],
        egress: EgressPolicy,
        *,
        timeout: float,
        max_tries: int,
        retry_base: float,
        retry_max: float,
    ) -> None:
        self._broker = broker
        self._hooks = {h.label: h for h in hooks}
        self._transport_policy = egress
        self._timeout = timeout
        self._max_tries = max_tries
        self._retry_base = retry_base
        self._retry_max = retry_max

    def wrap(self, executor: Executor) -> Executor:
        async def run(task: TaskInput, io: TaskIO) -> Outcome:
            if is_delivery(task.spec):
                return await self.deliver(task)
            return await executor(task, io)

        return run

    def backoff(self, attempt: int) -> float:
        """The wait after failed try ``attempt`` (1-based): base, 2 × base, … up to max."""
        return float(min(self._retry_max, self._retry_base * 2 ** (attempt - 1)))

    async def deliver(self, task: TaskInput) -> Outcome:
        w: dict[str, Any] = dict(task.spec["webhook"])  # type: ignore[arg-type]
        attempt = int(w["try"])
        hook = self._hooks.get(str(w["receiver"]))
        if hook is None:
            return await self._given_up(
                w, f"the receiver {w['receiver']!r} is no longer configured"
            )
        import httpx  # imported by the first delivery: a server without webhooks needs none

        try:
            status = await self._post(hook, w)
        except FalseworkError as exc:
            problem = exc.message
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            if 200 <= status < 300:
                await self._report(w, "delivered", f"delivered (HTTP {status})", httpStatus=status)
                return Outcome(
                    "completed",
                    "completion",
                    {
                        "message": "Run completed with status: completed",
                        "output": {"httpStatus": status},
                    },
                    keep_secrets=False,
                )
            problem = f"the receiver answered HTTP {status}"
        if attempt >= self._max_tries:
            return await self._given_up(w, problem)
        wait = self.backoff(attempt)
        await self._next_try(task, w, wait)
        await self._report(w, "retrying", f"{problem}; next try in {wait:g}s", nextTryIn=wait)
        return _failed(problem)

    async def _post(self, hook: WebhookConfig, w: dict[str, Any]) -> int:
        import httpx
        from standardwebhooks import Webhook

        # several secrets, separated by spaces, while one replaces another: each signs
        secrets = (os.environ.get(hook.secret_env) or "").split()
        if not secrets:
            raise FalseworkError(
                f"the environment variable {hook.secret_env} (its secret_env) is not set"
            )
        try:
            signers = [Webhook(secret) for secret in secrets]
        except Exception:
            raise FalseworkError(
                f"the environment variable {hook.secret_env} does not hold a "
                "Standard Webhooks secret (whsec_ followed by base64)"
            ) from None
        body = str(w["body"])
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "Falsework-Webhooks",
            "webhook-id": str(w["deliveryId"]),
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(
                signer.sign(str(w["deliveryId"]), now, body) for signer in signers
            ),
        }
        transport = Integrations(egress=self._transport_policy).http_transport()
        # the whole call within the timeout (httpx's applies to each read and write),
        # and the answer's status only: its body is never read, whatever its size
        try:
            async with (
                asyncio.timeout(self._timeout),
                httpx.AsyncClient(
                    transport=transport, timeout=self._timeout, follow_redirects=False
                ) as client,
                client.stream("POST", hook.url, content=body.encode(), headers=headers) as answer,
            ):
                return answer.status_code
        except TimeoutError:
            raise FalseworkError(f"no answer within {self._timeout:g}s") from None

    async def _next_try(self, task: TaskInput, w: dict[str, Any], wait: float) -> None:
        attempt = int(w["try"]) + 1
        key = _key(str(w["key"]), attempt)
        spec = {**task.spec, "webhook": {**w, "try": attempt}}
        await self._broker.create_many(
            [
                NewTask(
                    spec=spec,
                    idempotency_key=key,
                    id=_id(key),
                    run_after=datetime.now(UTC) + timedelta(seconds=wait),
                )
            ]
        )

    async def _given_up(self, w: dict[str, Any], problem: str) -> Outcome:
        await self._report(w, "failed", f"{problem}; given up after try {w['try']}")
        log.warning(
            "webhook %s: delivery %s of task %s given up: %s",
            w["receiver"],
            w["deliveryId"],
            w["taskId"],
            problem,
        )
        return _failed(problem)

    async def _report(self, w: dict[str, Any], outcome: str, what: str, **extra: Any) -> None:
        """An event on the announced task (never the URL's query, nor the secret)."""
        body: JSONObject = {
            "message": f"Webhook {w['receiver']} ({w['event']}), try {w['try']}: {what}",
            "webhook": {
                "receiver": w["receiver"],
                "event": w["event"],
                "deliveryId": w["deliveryId"],
                "try": w["try"],
                "outcome": outcome,
                **extra,
            },
        }
        log.info(
            "webhook %s: delivery %s of task %s, try %s: %s",
            w["receiver"],
            w["deliveryId"],
            w["taskId"],
            w["try"],
            what,
        )
        await self._broker.append_event(str(w["taskId"]), body)


def _failed(problem: str) -> Outcome:
    return Outcome(
        "failed",
        "completion",
        {
            "message": "Run completed with status: failed",
            "error": {"name": "WebhookError", "message": problem},
        },
        keep_secrets=False,
    )
