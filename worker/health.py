"""The worker's health endpoint: `/healthz` (the process answers) and `/readyz` (it is polling).

Ready means the server lists this worker among the task queue's workflow pollers: a worker that runs
but cannot reach Temporal, or whose pollers died, is not ready. Servers that cannot list pollers (the
time-skipping test server) are asked for their health instead. A few lines of asyncio rather than a
web framework: the worker serves nothing else.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from baton.logging import get_logger

log = get_logger(__name__)

CHECK_TIMEOUT = timedelta(seconds=3)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str


def worker_identity(worker: Worker) -> str:
    return worker.config().get("identity") or worker.client.identity


async def readiness(worker: Worker) -> Readiness:
    """Whether the server sees this worker polling its task queue for workflow tasks."""
    if not worker.is_running:
        return Readiness(False, "the worker is not running")
    client: Client = worker.client
    identity = worker_identity(worker)
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=worker.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        described = await client.workflow_service.describe_task_queue(
            request, timeout=CHECK_TIMEOUT
        )
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            return Readiness(False, f"Temporal did not answer: {err.status.name if err.status else err}")
        try:
            await client.service_client.check_health(timeout=CHECK_TIMEOUT)
        except RPCError as health_err:
            return Readiness(False, f"Temporal is not healthy: {health_err}")
        return Readiness(True, "running; this server cannot list pollers, and it is healthy")
    if any(poller.identity == identity for poller in described.pollers):
        return Readiness(True, f"polling {worker.task_queue} as {identity}")
    return Readiness(False, f"not yet seen polling {worker.task_queue} as {identity}")


async def _answer(worker: Worker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = await asyncio.wait_for(reader.readline(), timeout=5)
        while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
            pass  # headers: nothing here needs them
        parts = request_line.decode("latin-1").split()
        path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
        if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
            status, body = 405, {"status": "error", "detail": "GET /healthz or /readyz"}
        elif path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif path == "/readyz":
            result = await readiness(worker)
            status = 200 if result.ready else 503
            body = {"status": "ok" if result.ready else "unavailable", "detail": result.detail}
        else:
            status, body = 404, {"status": "error", "detail": "GET /healthz or /readyz"}
        payload = json.dumps(body).encode()
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
        )
        writer.write(head.encode() + (payload if parts and parts[0] != "HEAD" else b""))
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def parse_address(address: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) into its parts."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"worker_health_address: expected host:port, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve_health(worker: Worker, address: str) -> asyncio.Server:
    """Start answering health checks; the caller closes the returned server."""
    host, port = parse_address(address)
    server = await asyncio.start_server(lambda r, w: _answer(worker, r, w), host, port)
    bound = server.sockets[0].getsockname()
    log.info("worker_health_listening", host=bound[0], port=bound[1])
    return server
