"""Serve a test app on 127.0.0.1 for the length of a block (a local stand-in for a vendor's API)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI


@asynccontextmanager
async def serving(app: FastAPI, on_stop: Callable[[], None] | None = None) -> AsyncIterator[str]:
    """Yields the server's base URL (http://127.0.0.1:PORT); `on_stop` runs before it shuts down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the test server did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        if on_stop is not None:
            on_stop()
        server.should_exit = True
        await task
        sock.close()
