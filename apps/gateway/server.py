"""Serve the gateway with uvicorn in the caller's event loop, or as `baton gateway`."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from baton.apps.gateway.app import create_app
from baton.logging import configure_logging, get_logger
from baton.settings import Settings, get_settings

log = get_logger("baton.gateway")


async def serve_app(
    app: FastAPI,
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run uvicorn in the current event loop until it exits or `stop` is set."""
    # log_config=None keeps the structlog set-up instead of uvicorn's own.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock] if sock else None))
    watchers: list[asyncio.Task[Any]] = []
    if stop is not None:

        async def stop_on_event() -> None:
            await stop.wait()
            server.should_exit = True

        watchers.append(asyncio.create_task(stop_on_event()))
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            # The bound address, not the configured one: port 0 means "any free port".
            # A stop racing the start can leave no servers or sockets behind; fall back to the configured address.
            sockets = server.servers[0].sockets if server.servers else []
            address = sockets[0].getsockname() if sockets else (host, port)
            log.info("gateway_listening", host=address[0], port=address[1])
            if ready is not None:
                ready.set()
        await serving
    finally:
        server.should_exit = True
        for task in watchers:
            task.cancel()
        if not serving.done():
            await asyncio.shield(serving)


async def serve(
    settings: Settings,
    client: Client | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    *,
    sock: socket.socket | None = None,
) -> None:
    """Serve the gateway in the caller's event loop (the dev stack runs it next to a worker)."""
    if client is None:
        # Imported here: worker.wiring pulls in the activity modules, which a gateway never runs.
        from baton.worker.connection import connect

        client = await connect(settings)
    app = create_app(client, settings)
    await serve_app(app, settings.gateway_host, settings.gateway_port, sock=sock, ready=ready, stop=stop)


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))
