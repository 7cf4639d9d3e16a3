"""OpenTelemetry traces (the optional extra ``falsework[otel]``): a span for each
``POST /v2/tasks``, one per task run and one per step, joined in one trace across
processes.

The API node continues the caller's ``traceparent`` header (W3C Trace Context) in
its request span and stores that span's context in the task's spec
(``spec.traceContext``, beside Backstage's keys); whichever worker claims the task
continues it: the task's span is a child of the request's, each step's a child of
the task's. Everything is configured by the standard variables: tracing is on when
``OTEL_TRACES_EXPORTER`` or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set (and
``OTEL_SDK_DISABLED`` is not true); spans go out over OTLP/HTTP (protobuf) in
batches (``OTEL_BSP_*``), named by ``OTEL_SERVICE_NAME`` (default ``falsework``) and
``OTEL_RESOURCE_ATTRIBUTES``; ``OTEL_TRACES_EXPORTER=console`` prints them instead.
Without the extra installed, a configured exporter is one warning and no tracing.

A provider of our own (never the global one): several apps in one process (the
tests) trace apart, and nothing else in the process is traced by accident.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from falsework.taskio import Executor, Outcome, TaskInput, TaskIO
from falsework.types import JSONObject

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("falsework.tracing")

SPEC_KEY = "traceContext"  # the task spec's key holding the request's trace context


def configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


class Tracing:
    """Spans of requests, tasks and steps; with no provider, it does nothing."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self._tracer: Tracer | None = provider.get_tracer("falsework") if provider else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def from_environment(cls) -> Tracing:
        if not configured():
            return cls()
        try:
            return cls(_provider_from_environment())
        except ImportError:
            log.warning(
                "OTEL_* variables ask for traces, but OpenTelemetry is not installed: "
                "pip install 'falsework[otel]'. Tracing is off."
            )
            return cls()

    def shutdown(self) -> None:
        """Export what is buffered, then stop (at the end of the process)."""
        if self.provider is not None:
            self.provider.shutdown()

    # -- the API node ---------------------------------------------------------------
    @contextlib.contextmanager
    def request(
        self, name: str, headers: Mapping[str, str], **attributes: Any
    ) -> Iterator[_RequestSpan]:
        """A server span continuing the caller's ``traceparent``; what it yields
        gives the context to store with a task (``carrier``) and takes attributes."""
        if self._tracer is None:
            yield _RequestSpan(None)
            return
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(carrier=dict(headers))
        with self._tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=_clean(attributes)
        ) as span:
            yield _RequestSpan(span)

    # -- the worker -----------------------------------------------------------------
    def instrument(self, executor: Executor) -> Executor:
        """``executor`` with a span per task run (continuing the context stored in
        its spec) and one per step."""
        tracer = self._tracer
        if tracer is None:
            return executor
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        propagator = TraceContextTextMapPropagator()

        async def run(task: TaskInput, io: TaskIO) -> Outcome:
            spec = task.spec if isinstance(task.spec, dict) else {}
            carrier = spec.get(SPEC_KEY)
            parent = propagator.extract(
                carrier={str(k): str(v) for k, v in carrier.items()}
                if isinstance(carrier, dict)
                else {}
            )
            info = spec.get("templateInfo")
            template = str(info.get("entityRef")) if isinstance(info, dict) else "?"
            attributes = _clean(
                {
                    "falsework.task.id": task.id,
                    "falsework.task.attempt": task.attempt,
                    "falsework.template": template,
                    "enduser.id": task.created_by,
                }
            )
            with tracer.start_as_current_span(
                f"task {template}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                steps = _StepSpans(io, tracer, span, _actions(spec))
                try:
                    outcome = await executor(task, steps)
                except BaseException as exc:
                    steps.end_all("stopped")
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    span.set_attribute("falsework.task.status", "stopped")
                    raise
                steps.end_all("stopped" if outcome.status == "completed" else outcome.status)
                span.set_attribute("falsework.task.status", outcome.status)
                if outcome.status != "completed":
                    error = outcome.body.get("error")
                    message = error.get("message") if isinstance(error, dict) else None
                    span.set_status(Status(StatusCode.ERROR, str(message or outcome.status)))
                return outcome

        return run


class _RequestSpan:
    def __init__(self, span: Span | None) -> None:
        self._span = span

    def carrier(self) -> dict[str, str] | None:
        """The span's context as ``traceparent`` (and ``tracestate``), to store."""
        if self._span is None:
            return None
        from opentelemetry.trace import set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        out: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(out, context=set_span_in_context(self._span))
        return out or None

    def set(self, **attributes: Any) -> None:
        if self._span is not None:
            self._span.set_attributes(_clean(attributes))


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def _actions(spec: JSONObject) -> dict[str, str]:
    steps = spec.get("steps")
    found: dict[str, str] = {}
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and "id" in step:
            found[str(step["id"])] = str(step.get("action", "unknown"))
    return found


class _StepSpans:
    """A TaskIO that opens a step's span at its 'processing' event and ends it at
    the step's last one (completed, skipped, failed, cancelled)."""

    def __init__(self, inner: TaskIO, tracer: Tracer, task_span: Span, actions: dict[str, str]):
        self._inner = inner
        self._tracer = tracer
        self._task_span = task_span
        self._actions = actions
        self._open: dict[str, Span] = {}

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        step, status = body.get("stepId"), body.get("status")
        if isinstance(step, str) and isinstance(status, str):
            if status == "processing":
                self._begin(step)
            else:
                if step not in self._open:  # skipped, or completed by an earlier attempt
                    self._begin(step)
                self._end(step, status)
        await self._inner.emit(body, type)

    def _begin(self, step: str) -> None:
        from opentelemetry.trace import set_span_in_context

        span = self._tracer.start_span(
            f"step {step}",
            context=set_span_in_context(self._task_span),
            attributes={
                "falsework.step.id": step,
                "falsework.step.action": self._actions.get(step, "unknown"),
            },
        )
        self._open[step] = span

    def _end(self, step: str, status: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self._open.pop(step, None)
        if span is None:
            return
        span.set_attribute("falsework.step.status", status)
        if status not in ("completed", "skipped"):
            span.set_status(Status(StatusCode.ERROR, status))
        span.end()

    def end_all(self, status: str) -> None:
        """End the spans of steps still open when the run ends."""
        for step in list(self._open):
            self._end(step, status)

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        await self._inner.save_step(step_id, state)

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        return await self._inner.checkpoint_get(key)

    async def checkpoint_set(self, key: str, value: Any) -> None:
        await self._inner.checkpoint_set(key, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _provider_from_environment() -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "falsework"}))
    provider = TracerProvider(resource=resource)
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    for name in (e.strip() for e in exporters.split(",") if e.strip()):
        exporter: SpanExporter
        if name == "otlp":
            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol.strip() != "http/protobuf":
                log.warning(
                    "OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: traces go out as "
                    "http/protobuf",
                    protocol,
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console)", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("tracing: spans of %s go out (%s)", resource.attributes.get(SERVICE_NAME), exporters)
    return provider
