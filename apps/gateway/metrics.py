"""The gateway's Prometheus endpoint, `/metrics`: its HTTP traffic, and the queues and surge as Temporal holds them.

Requests are counted by route template (`/v1/conversations/{conversation_id}/messages`, never a raw path:
conversation ids are unbounded and customer-chosen), method and status. Queue depth, the longest wait and
the surge state are read from the queue and operations workflows at each scrape, so every gateway reports
the same figures however many run; a failed read leaves them out and sets `baton_operations_scrape_ok 0`.
Each app has its own registry: a process may build several (tests do). Series: contract/metrics.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.contract import ids
from baton.contract import metrics as series
from baton.contract.messages import QueueEntry
from baton.logging import get_logger
from baton.policies.loader import load_policy
from baton.policies.schema import Policy
from baton.settings import Settings

log = get_logger("baton.gateway")

SCRAPE_TIMEOUT_SECONDS = 5.0
UNMATCHED = "unmatched"  # the route label of a request no route matched (404s for random paths)


class GatewayMetrics:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        requests = series.HTTP_REQUESTS
        self.requests = Counter(requests.instrument, requests.help, requests.labels, registry=r)
        self.latency = Histogram(
            series.HTTP_LATENCY.name,
            series.HTTP_LATENCY.help,
            series.HTTP_LATENCY.labels,
            buckets=series.HTTP_LATENCY.buckets,
            registry=r,
        )
        self.queue_depth = self._gauge(series.QUEUE_DEPTH)
        self.oldest_wait = self._gauge(series.QUEUE_OLDEST_WAIT)
        self.surge = self._gauge(series.SURGE_ACTIVE)
        self.waiting = self._gauge(series.WAITING)
        self.escalations_last_hour = self._gauge(series.ESCALATIONS_LAST_HOUR)
        self.scrape_ok = self._gauge(series.SCRAPE_OK)
        self._policy: Policy | None = None

    def _gauge(self, spec: series.Series) -> Gauge:
        return Gauge(spec.name, spec.help, spec.labels, registry=self.registry)

    # --- requests --------------------------------------------------------------------------------

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    # --- queues and surge, read at each scrape ----------------------------------------------------

    def _queues(self) -> list[str]:
        if self._policy is None:
            self._policy = load_policy(self._settings.policy)
        routing = self._policy.handoff.routing
        names = {routing.default_queue, routing.general_queue, *routing.trigger_queues.values()}
        return sorted(names | set(routing.segment_queues.values()))

    async def _entries(self, queue: str) -> list[QueueEntry]:
        handle = self._client.get_workflow_handle(ids.queue_workflow_id(queue, self._settings.task_queue))
        try:
            return await handle.query("entries", result_type=list[QueueEntry])
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return []  # no one has waited in this queue yet
            raise

    async def refresh(self) -> None:
        """Read the queues and the surge state from Temporal into the gauges."""
        try:
            queues = self._queues()
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                operations, *entries = await asyncio.gather(
                    baton_client.operations_status(self._client, self._settings.task_queue),
                    *(self._entries(queue) for queue in queues),
                )
        except Exception as err:  # a scrape must answer even when Temporal does not
            log.warning("metrics_scrape_failed", error=type(err).__name__)
            self.scrape_ok.set(0)
            return
        now = datetime.now(UTC)
        for queue, waiting in zip(queues, entries, strict=True):
            self.queue_depth.labels(queue=queue).set(len(waiting))
            oldest = min((entry.enqueued_at for entry in waiting), default=None)
            # Enqueue times are workflow time; a clock a little behind it must not report a negative wait.
            wait = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            self.oldest_wait.labels(queue=queue).set(wait)
        self.surge.clear()
        self.surge.labels(reason=operations.reason or "none").set(1 if operations.surge else 0)
        self.waiting.set(operations.waiting)
        self.escalations_last_hour.set(operations.escalations_last_hour)
        self.scrape_ok.set(1)

    def router(self) -> APIRouter:
        routes = APIRouter(tags=["health"])

        @routes.get("/metrics", summary="Prometheus metrics", response_class=Response)
        async def prometheus() -> Response:
            await self.refresh()
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return routes


def route_template(scope: Scope) -> str:
    """The matched route's template, prefixes included, as the router wrote it into the scope it was given."""
    # FastAPI 0.16x nests included routers and keeps the full template in its own context; earlier versions
    # copy each route with its prefix, so the route's own template is the full one.
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(effective, "path_format", None) or getattr(scope.get("route"), "path_format", None)
    return template or UNMATCHED


class RequestMetrics:
    """ASGI middleware: each HTTP request's route template, status and time, into GatewayMetrics."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(scope["method"], route_template(scope), status, time.perf_counter() - started)


def instrument(app: FastAPI, client: Client, settings: Settings) -> GatewayMetrics:
    """Serve /metrics on the app and count every request it answers."""
    gateway_metrics = GatewayMetrics(client, settings)
    app.add_middleware(RequestMetrics, metrics=gateway_metrics)
    app.include_router(gateway_metrics.router())
    return gateway_metrics
