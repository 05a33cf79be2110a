"""Prometheus metrics, read over HTTP after scripted escalations: the worker's endpoint (the SDK's runtime
with Baton's series) and the gateway's /metrics.

Halfway through, the worker is replaced by a new one, which replays the first conversation's history
before it runs anything new: the exact decision counts prove that a replay records nothing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from baton.apps.gateway import create_app
from baton.contract import metrics
from baton.settings import Settings
from baton.worker.connection import DATA_CONVERTER
from baton.worker.telemetry import metrics_runtime
from baton.worker.wiring import build_worker
from tests.clock import skip_time
from tests.conftest import time_skipping_server
from tests.loopback import serving
from tests.test_handoff_note import GOOD_NOTE

Sample = tuple[str, dict[str, str], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse(text: str) -> list[Sample]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == want for k, want in labels.items()))


def names(samples: list[Sample]) -> set[str]:
    return {name for name, _, _ in samples}


class FlakyLlm:
    """An OpenAI-compatible endpoint that writes the first note, then answers 500 to everything."""

    def __init__(self) -> None:
        self.calls = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> JSONResponse:
            await request.json()
            self.calls += 1
            if self.calls > 1:
                return JSONResponse({"error": {"message": "upstream exploded", "type": "server_error"}}, 500)
            return JSONResponse(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": 1741000000,
                    "model": "test-model",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": json.dumps(GOOD_NOTE)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 812, "completion_tokens": 203, "total_tokens": 1015},
                }
            )

        return app


@asynccontextmanager
async def gateway(client: Client, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(create_app(client, settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http


def message(conversation: str, text: str, message_id: str) -> tuple[str, dict[str, Any]]:
    body = {
        "customer_id": "cus_enterprise",
        "channel": "chat",
        "message": {"message_id": message_id, "role": "customer", "text": text},
    }
    return f"/v1/conversations/{conversation}/messages", body


async def scrape(url: str) -> list[Sample]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    return parse(response.text)


async def eventually(url: str, ready: Any, timeout: float = 30.0) -> list[Sample]:
    """Scrape until `ready(samples)` holds: activities record as they finish, in the background."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await scrape(url)
        if ready(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.3)


@pytest.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: skipping 450 s on the suite's shared server also wakes every
    timer the earlier tests' conversations left behind, and that skip can outlast the server's RPC deadline."""
    async with time_skipping_server() as environment:
        yield environment


async def test_worker_and_gateway_export_the_listed_series(
    own_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    env = own_env
    metrics_address = f"127.0.0.1:{free_port()}"
    worker_metrics = f"http://{metrics_address}/metrics"
    runtime = metrics_runtime(metrics_address)
    client = await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )
    llm = FlakyLlm()
    async with serving(llm.app()) as llm_url:
        settings = Settings(
            task_queue=task_queue, llm_base_url=f"{llm_url}/v1", llm_api_key="test-key", llm_model="test-model"
        )
        # The second worker's store has no tables: every record write fails, as with a database that lost its
        # schema (the incident is declared while the first worker, with the real store, runs).
        broken_store = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"})
        first, second = f"metrics-{uuid.uuid4().hex[:8]}", f"metrics-{uuid.uuid4().hex[:8]}"
        async with gateway(client, settings) as http:
            # No sticky cache on the first worker, so that the server hands its conversation over at once.
            async with build_worker(client, settings, max_cached_workflows=0):
                for text, message_id in (("Where can I find my invoices?", "m1"), ("I want to talk to a human", "m2")):
                    path, body = message(first, text, message_id)
                    response = await http.post(path, json=body)
                    assert response.status_code == 200, response.text
                decision = response.json()
                assert decision["action"] == "escalate" and decision["urgency"] == "immediate", decision
                incident = {"description": "Login outage", "declared_by": "ops"}
                declared = await http.post("/v1/incidents", json=incident)
                assert declared.status_code == 200, declared.text
            # A new worker (a restart) replays the conversation's history before it runs anything new:
            # the workflow meter records nothing while it replays.
            async with build_worker(client, broken_store):
                # The same message again is answered from the workflow's memory: no new decision is counted.
                assert (await http.post(path, json=body)).json() == decision
                waiting = parse((await http.get("/metrics")).text)
                queue = next(ls["queue"] for n, ls, v in waiting if n == "baton_queue_depth" and v == 1)
                assert total(waiting, "baton_queue_oldest_wait_seconds", queue=queue) >= 0
                assert total(waiting, "baton_operations_scrape_ok") == 1

                # The dead-zone ladder runs while nobody picks up: updates, SLA, wider routing, a page.
                await skip_time(env, 450)
                pickup = await http.post(
                    f"/v1/conversations/{first}/pickup", json={"agent_id": "alice", "agent_name": "Alice"}
                )
                assert pickup.status_code == 200, pickup.text

                # A second escalation, whose note the LLM fails to write: retried, then the deterministic note.
                path, body = message(second, "I want to talk to a human", "m1")
                assert (await http.post(path, json=body)).json()["action"] == "escalate"

                worker = await eventually(
                    worker_metrics,
                    lambda s: (
                        total(s, "baton_llm_fallbacks_total", purpose="handoff_note", reason="failed") >= 1
                        and total(s, "baton_time_to_pickup_seconds_count") >= 1
                    ),
                )
                gateway_samples = parse((await http.get("/metrics")).text)

    mine = {"task_queue": task_queue}
    # Decisions: exact counts although the second worker replayed the first conversation's history.
    assert total(worker, "baton_decisions_total", action="continue", urgency="none", **mine) == 1
    assert total(worker, "baton_decisions_total", action="escalate", urgency="immediate", **mine) == 2
    assert total(worker, "baton_decision_triggers_total", action="escalate", trigger="explicit_human_request") == 2
    assert total(worker, "baton_escalations_total", urgency="immediate", segment="enterprise", **mine) == 2
    # Time to pickup: one pickup, after the 450 seconds the ladder ran for.
    assert total(worker, "baton_time_to_pickup_seconds_count", urgency="immediate", segment="enterprise") == 1
    assert total(worker, "baton_time_to_pickup_seconds_sum") >= 420
    assert total(worker, "baton_time_to_pickup_seconds_bucket", le="60.0") == 0
    assert total(worker, "baton_time_to_pickup_seconds_bucket", le="+Inf") == 1
    # The immediate ladder (policies/default.yaml): updates every 60 s, SLA at 180, widen at 300, page at 420.
    assert total(worker, "baton_ladder_steps_total", step="wait_update", urgency="immediate") >= 3
    for step in ("sla", "widen", "page"):
        assert total(worker, "baton_ladder_steps_total", step=step, urgency="immediate") == 1, step
    # No pager is configured: the page is counted as not delivered.
    assert total(worker, "baton_pages_total", action="trigger", outcome="not_delivered") >= 1
    # LLM: one good note (its tokens counted), then three failed attempts and the fallback.
    assert total(worker, "baton_llm_calls_total", purpose="handoff_note", outcome="ok") == 1
    assert total(worker, "baton_llm_calls_total", purpose="handoff_note", outcome="failed") == 3
    assert total(worker, "baton_llm_tokens_total", purpose="handoff_note") == 1015
    assert total(worker, "baton_llm_latency_seconds_count", purpose="handoff_note") == 4
    assert total(worker, "baton_llm_fallbacks_total", purpose="handoff_note", reason="failed") == 1
    assert llm.calls == 4
    # The store has no tables: each write attempt failed and was counted.
    assert total(worker, "baton_store_write_failures_total", record="escalation", error="OperationalError") >= 1
    # The SDK's own series that deploy/ relies on.
    assert total(worker, "temporal_num_pollers", poller_type="workflow_task", **mine) >= 1
    assert total(worker, "temporal_activity_execution_failed_total", activity_type="record_escalation") >= 1
    exported = names(worker)
    missing = {n for s in (*metrics.WORKER_SERIES, *metrics.SDK_SERIES) for n in s.exported_names()} - exported
    assert not missing, f"the worker does not export {sorted(missing)}"

    # The gateway: requests by route template (never the raw path), queue depth and surge.
    route = "/v1/conversations/{conversation_id}/messages"
    assert total(gateway_samples, "baton_gateway_requests_total", method="POST", route=route, status="200") == 4
    assert total(gateway_samples, "baton_gateway_request_duration_seconds_count", method="POST", route=route) == 4
    assert not [ls for n, ls, _ in gateway_samples if first in ls.get("route", "")], "raw paths must not be labels"
    assert total(gateway_samples, "baton_gateway_requests_total", route="/metrics", status="200") >= 1
    assert total(gateway_samples, "baton_queue_depth", queue=queue) == 1  # the second conversation waits
    assert total(gateway_samples, "baton_surge_active", reason="incident") == 1
    assert total(gateway_samples, "baton_operations_scrape_ok") == 1
    missing = {n for s in metrics.GATEWAY_SERIES for n in s.exported_names()} - names(gateway_samples)
    assert not missing, f"the gateway does not export {sorted(missing)}"


async def test_gateway_metrics_answer_when_temporal_does_not(tmp_path: Path) -> None:
    """A scrape must never fail with Temporal: the queue figures are left out and scrape_ok says so."""
    unreachable = await Client.connect("127.0.0.1:1", lazy=True)  # nothing listens on port 1
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}")
    async with gateway(unreachable, settings) as http:
        response = await http.get("/metrics")
        health = await http.get("/healthz")
    assert response.status_code == 200
    samples = parse(response.text)
    assert total(samples, "baton_operations_scrape_ok") == 0
    assert "baton_queue_depth" not in names(samples)
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "checks": {"temporal": "failed", "database": "ok"}}


@pytest.mark.parametrize("broken", ["database"])
async def test_healthz_fails_when_the_store_does_not_answer(client: Client, tmp_path: Path, broken: str) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'baton.db'}")
    async with gateway(client, settings) as http:
        health = await http.get("/healthz")
    assert health.status_code == 503
    assert health.json()["checks"] == {"temporal": "ok", broken: "failed"}


async def test_the_llm_judge_is_measured_like_the_note() -> None:
    """The judge's calls, tokens and fallbacks (failed, no endpoint, over budget) through the activity meter."""
    from temporalio.testing import ActivityEnvironment

    from baton.activities.judge import JudgeActivities
    from tests.test_llm_judge import JudgeLlm, judge_request, judge_settings

    address = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(address)  # held: the endpoint lives as long as the runtime
    meter = runtime.metric_meter
    llm = JudgeLlm()
    async with serving(llm.app(), on_stop=llm.release.set) as url:
        llm.base_url = f"{url}/v1"

        async def judge(settings: Settings, **fields: Any) -> None:
            environment = ActivityEnvironment()
            environment.metric_meter = meter
            await environment.run(JudgeActivities(settings).judge_message, judge_request(**fields))

        await judge(judge_settings(llm))
        llm.mode = "http_500"
        await judge(judge_settings(llm))
        await judge(judge_settings(llm), tokens_used=1900, max_tokens=150, token_budget=2000)
        await judge(Settings(llm_base_url=None))
    assert llm.problems == [] and len(llm.requests) == 2
    samples = await scrape(f"http://{address}/metrics")
    assert total(samples, "baton_llm_calls_total", purpose="judge", outcome="ok") == 1
    assert total(samples, "baton_llm_calls_total", purpose="judge", outcome="failed") == 1
    assert total(samples, "baton_llm_tokens_total", purpose="judge") == 1015
    assert total(samples, "baton_llm_latency_seconds_count", purpose="judge") == 2
    for reason in ("failed", "over_budget", "no_endpoint"):
        assert total(samples, "baton_llm_fallbacks_total", purpose="judge", reason=reason) == 1, reason
