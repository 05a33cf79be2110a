"""A real webhook receiver on loopback, as a chat backend, helpdesk or pager would run one.

It verifies every signature, records every receipt, and shows each
Idempotency-Key once, exactly as the docs ask a backend to.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response

from baton.activities import webhooks

T = TypeVar("T")


@dataclass
class Receipt:
    path: str
    event: str
    key: str
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    secret: str
    receipts: list[Receipt] = field(default_factory=list)
    shown: dict[str, Receipt] = field(default_factory=dict)
    # Return a status to answer instead of 200 (to simulate outages); None accepts.
    fail: Callable[[Receipt], int | None] = lambda receipt: None
    url: str = ""

    def __post_init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path}")
        async def receive(path: str, request: Request) -> Response:
            body = await request.body()
            ok = webhooks.verify(
                self.secret,
                request.headers.get(webhooks.TIMESTAMP_HEADER, ""),
                request.headers.get(webhooks.SIGNATURE_HEADER, ""),
                body,
                now=int(time.time()),
            )
            if not ok:
                return Response(status_code=401)
            receipt = Receipt(
                path=path,
                event=request.headers.get(webhooks.EVENT_HEADER, ""),
                key=request.headers.get(webhooks.IDEMPOTENCY_HEADER, ""),
                body=json.loads(body),
            )
            self.receipts.append(receipt)
            status = self.fail(receipt)
            if status is not None:
                return Response(status_code=status)
            self.shown.setdefault(receipt.key, receipt)
            return Response(status_code=200)

        return app

    def at(self, path: str) -> list[Receipt]:
        """What was shown at one endpoint, in order of first receipt."""
        return [r for r in self.shown.values() if r.path == path]

    async def __aenter__(self) -> WebhookReceiver:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app(), log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (in real time) for the worker to catch up with the test server's skipped clock."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def until(
    fetch: Callable[[], Awaitable[T]], predicate: Callable[[T], bool], timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll an async read (a query, a status) until its answer satisfies the predicate."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.05)
