"""OpenTelemetry: the request that creates a task, the task's run and each of its
steps are spans of one trace, continued from the caller's `traceparent`.

In one process with an in-memory exporter (the app and its worker, SQLite and
Postgres), and across processes: `falsework serve --concurrency 0` takes the
request, `falsework worker` runs the task, and both export over OTLP/HTTP to a
receiver on loopback that decodes the real protobuf payloads.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from falsework.api.app import create_app
from falsework.config import Settings
from falsework.tracing import SPEC_KEY, Tracing, configured
from support.serve import clean_env, free_port, stop_process, wait_healthy
from support.servers import FALSEWORK, SECRET_KEY, TEMPLATES, wait_for_status

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
API = "/api/scaffolder/v2"


def hex_id(value: int, width: int) -> str:
    return f"{value:0{width}x}"


async def wait_async(client: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task: dict[str, Any] = (await client.get(f"{API}/tasks/{task_id}")).json()
        if task["status"] == status:
            return task
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.05)


async def run_two(settings: Settings, tracing: Tracing, **headers: str) -> dict[str, Any]:
    """A task that fails and one that completes, through the app (its worker runs them)."""
    app = create_app(settings, tracing=tracing)
    transport = httpx.ASGITransport(app=app)
    out = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        for status, ref, values in (
            ("failed", "wait", {"seconds": "nope"}),
            ("completed", "hello", {"name": "t"}),
        ):
            made = await client.post(
                f"{API}/tasks",
                json={"templateRef": f"template:default/{ref}", "values": values},
                headers=headers,
            )
            assert made.status_code == 201, made.text
            out[status] = await wait_async(client, made.json()["id"], status)
    return out


async def test_request_task_and_steps_are_one_trace(database_url: str, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        templates=str(TEMPLATES),
        secret_key=SECRET_KEY,
        concurrency=4,
        poll_interval=0.1,
    )
    tasks = await run_two(settings, Tracing(provider), traceparent=TRACEPARENT)
    spans = exporter.get_finished_spans()
    assert {hex_id(s.context.trace_id, 32) for s in spans} == {TRACE_ID}

    def children(parent: ReadableSpan) -> list[ReadableSpan]:
        return [
            s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id
        ]

    requests = [s for s in spans if s.name == "POST /v2/tasks"]
    assert len(requests) == 2
    for request, (status, task) in zip(requests, tasks.items(), strict=True):
        assert request.kind is SpanKind.SERVER
        assert request.parent is not None and hex_id(request.parent.span_id, 16) == CALLER_SPAN
        assert request.parent.is_remote
        assert request.attributes is not None
        assert request.attributes["falsework.task.id"] == task["id"]
        # the context the request stored with the task is the request's own span
        stored = task["spec"][SPEC_KEY]["traceparent"]
        assert stored == f"00-{TRACE_ID}-{hex_id(request.context.span_id, 16)}-01"
        (run,) = children(request)
        assert run.kind is SpanKind.CONSUMER
        assert run.attributes is not None
        assert run.attributes["falsework.task.id"] == task["id"]
        assert run.attributes["falsework.task.status"] == status
        assert run.attributes["falsework.task.attempt"] == 1
        assert run.attributes["enduser.id"] == "user:default/guest"
        steps = {s.name: s for s in children(run)}
        if status == "failed":
            assert run.status.status_code is StatusCode.ERROR
            assert set(steps) == {"step before", "step wait", "step after"}
            assert steps["step wait"].status.status_code is StatusCode.ERROR
            assert steps["step wait"].attributes["falsework.step.action"] == "debug:wait"  # type: ignore[index]
            assert steps["step after"].attributes["falsework.step.status"] == "skipped"  # type: ignore[index]
        else:
            assert run.status.status_code is StatusCode.UNSET
            assert steps and all(
                s.attributes["falsework.step.status"] == "completed"  # type: ignore[index]
                for s in steps.values()
            )
        for step in steps.values():
            assert step.start_time >= run.start_time and step.end_time <= run.end_time  # type: ignore[operator]


async def test_without_otel_settings_nothing_is_traced_or_stored(tmp_path: Path) -> None:
    assert not configured({})
    assert not configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    assert not configured({"OTEL_TRACES_EXPORTER": "none"})
    assert configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"})
    assert configured({"OTEL_TRACES_EXPORTER": "console"})
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'fw.db'}",
        data_dir=tmp_path / "data",
        templates=str(TEMPLATES),
        concurrency=2,
        poll_interval=0.1,
    )
    tasks = await run_two(settings, Tracing(), traceparent=TRACEPARENT)
    assert all(SPEC_KEY not in task["spec"] for task in tasks.values())


# -- across processes, over OTLP/HTTP ----------------------------------------------------
class Receiver:
    """A minimal OTLP/HTTP traces endpoint: decodes each POST /v1/traces."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.content_types.add(self.headers.get("Content-Type", ""))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.requests.append(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[tuple[str, Any]]:
        """(service.name, span) of every span received."""
        out = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope in resource_spans.scope_spans:
                    out.extend((attributes.get("service.name", ""), s) for s in scope.spans)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.mark.slow
def test_one_trace_across_the_api_node_and_the_worker(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    env = {
        **clean_env(),
        "FALSEWORK_DATABASE_URL": database_url,
        "FALSEWORK_DATA_DIR": str(tmp_path / "data"),
        "FALSEWORK_TEMPLATES": str(TEMPLATES),
        "FALSEWORK_SECRET_KEY": SECRET_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    port = free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with api_log.open("wb") as sink:
        api = subprocess.Popen(
            [str(FALSEWORK), "serve", "--port", str(port), "--concurrency", "0"],
            env={**env, "OTEL_SERVICE_NAME": "falsework-api"},
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, api, api_log, stop=lambda: stop_process(api, 10))
    with worker_log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(FALSEWORK), "worker"],
            env={**env, "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"},
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            made = client.post(
                f"{API}/tasks",
                json={"templateRef": "template:default/hello", "values": {"name": "otlp"}},
                headers={"traceparent": TRACEPARENT},
            )
            assert made.status_code == 201, made.text
            task_id = made.json()["id"]
            wait_for_status(client, task_id, ("completed",))
    finally:
        assert stop_process(worker, 30) == 0, worker_log.read_text()
        assert stop_process(api, 30) == 0, api_log.read_text()

    deadline = time.monotonic() + 10
    while len({name for name, _ in receiver.spans()}) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.content_types == {"application/x-protobuf"}
    spans = receiver.spans()
    by_service: dict[str, list[Any]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    # the worker is named by default; the API node by OTEL_SERVICE_NAME
    assert set(by_service) == {"falsework-api", "falsework"}, by_service.keys()
    (request,) = by_service["falsework-api"]
    assert request.name == "POST /v2/tasks"
    assert request.trace_id.hex() == TRACE_ID and request.parent_span_id.hex() == CALLER_SPAN
    runs = [s for s in by_service["falsework"] if s.name.startswith("task ")]
    (run,) = runs
    assert run.trace_id.hex() == TRACE_ID
    assert run.parent_span_id == request.span_id
    attributes = {a.key: a.value for a in run.attributes}
    assert attributes["falsework.task.id"].string_value == task_id
    steps = [s for s in by_service["falsework"] if s.name.startswith("step ")]
    assert steps and all(s.parent_span_id == run.span_id for s in steps)
    assert all(s.trace_id.hex() == TRACE_ID for s in steps)
