"""OpenTelemetry traces, when BATON_OTLP_ENDPOINT is set: spans from the client that sends a message, the
workflow that decides and the activities it runs reach a collector over OTLP/HTTP (a loopback server that
decodes the documented protobuf request), as one trace."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI, Request, Response
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import send_message
from baton.contract.messages import ConversationStart, MessageIn
from baton.settings import Settings
from baton.worker.connection import connect
from baton.worker.telemetry import TracingUnavailable, tracing_for
from baton.worker.wiring import build_worker
from tests.loopback import serving

trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")


class Collector:
    """POST /v1/traces with an ExportTraceServiceRequest (OTLP/HTTP, protobuf)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, bytes]] = []  # (service, span name, trace id)
        self.content_types: set[str] = set()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            self.content_types.add(request.headers.get("content-type", ""))
            export = trace_service.ExportTraceServiceRequest()
            export.ParseFromString(await request.body())
            for resource_spans in export.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append((attributes.get("service.name", ""), span.name, span.trace_id))
            return Response(trace_service.ExportTraceServiceResponse().SerializeToString(),
                            media_type="application/x-protobuf")  # fmt: skip

        return app


async def test_a_message_is_traced_from_client_to_activities(env: WorkflowEnvironment, task_queue: str) -> None:
    collector = Collector()
    async with serving(collector.app()) as url:
        settings = Settings(
            task_queue=task_queue,
            temporal_address=env.client.service_client.config.target_host,
            temporal_namespace=env.client.namespace,
            otlp_endpoint=url,
        )
        tracing = tracing_for(settings, "baton-worker")
        client: Client = await connect(settings, interceptors=tracing.interceptors)
        conversation = f"traced-{uuid.uuid4().hex[:8]}"
        async with build_worker(client, settings):
            decision = await send_message(
                client,
                task_queue,
                ConversationStart(conversation_id=conversation, customer_id="cus_enterprise", channel="chat"),
                MessageIn(message_id="m1", role="customer", text="I want to talk to a human"),
            )
        tracing.shutdown()  # flushes the batch
    assert decision.action == "escalate"
    assert collector.content_types == {"application/x-protobuf"}
    names = {name for _, name, _ in collector.spans}
    assert "StartUpdateWithStartWorkflow:ConversationWorkflow" in names, names
    assert "RunWorkflow:ConversationWorkflow" in names and "HandleUpdate:add_message" in names, names
    assert "RunActivity:enqueue_conversation" in names, names
    start = next(t for _, name, t in collector.spans if name.startswith("StartUpdateWithStartWorkflow"))
    in_trace = {name for _, name, t in collector.spans if t == start}
    assert {"RunWorkflow:ConversationWorkflow", "RunActivity:enqueue_conversation"} <= in_trace, in_trace
    assert {service for service, _, _ in collector.spans} == {"baton-worker"}


def test_no_endpoint_no_tracing() -> None:
    tracing = tracing_for(Settings(), "baton-worker")
    assert tracing.interceptors == []
    tracing.shutdown()


def test_an_endpoint_without_the_packages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(TracingUnavailable, match=r"pip install 'baton\[otel\]'"):
        tracing_for(Settings(otlp_endpoint="http://127.0.0.1:4318"), "baton-worker")
