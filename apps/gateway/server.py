"""Serve the gateway with uvicorn in the caller's event loop, or as `baton gateway`."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from baton import heap
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


class UnsafeGatewayConfig(RuntimeError):
    """The gateway would answer /v1 to anyone on the network: a non-loopback address and no API key."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_exposure(settings: Settings) -> None:
    """Refuse to serve /v1 without a key anywhere but on loopback (unless a proxy authenticates)."""
    keyed = settings.gateway_api_key or settings.gateway_require_key  # store keys are required with either
    if keyed or settings.gateway_allow_no_key or is_loopback(settings.gateway_host):
        return
    raise UnsafeGatewayConfig(
        f"gateway_host is {settings.gateway_host!r}, which is not a loopback address, and BATON_GATEWAY_API_KEY "
        "is not set: anyone who can reach the port could read transcripts and act as an agent. Set "
        "BATON_GATEWAY_API_KEY, or listen on 127.0.0.1, or (only behind a proxy that authenticates) set "
        "BATON_GATEWAY_ALLOW_NO_KEY=true."
    )


async def serve(
    settings: Settings,
    client: Client | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    *,
    sock: socket.socket | None = None,
) -> None:
    """Serve the gateway in the caller's event loop (the dev stack runs it next to a worker)."""
    check_exposure(settings)
    shutdown_tracing = None
    if client is None:
        # Imported here: worker.wiring pulls in the activity modules, which a gateway never runs.
        from baton.worker.connection import connect
        from baton.worker.telemetry import tracing_for

        # With an OTLP endpoint, each request's update starts the trace the worker's spans join.
        tracing = tracing_for(settings, "baton-gateway")
        shutdown_tracing = tracing.shutdown
        client = await connect(settings, interceptors=tracing.interceptors)
    app = create_app(client, settings)
    heap.settle()  # the classifier is loaded: keep it out of garbage collection
    try:
        await serve_app(app, settings.gateway_host, settings.gateway_port, sock=sock, ready=ready, stop=stop)
    finally:
        if shutdown_tracing is not None:
            shutdown_tracing()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        check_exposure(settings)
    except UnsafeGatewayConfig as err:
        log.error("gateway_refused", reason=str(err))
        raise SystemExit(f"baton gateway: {err}") from None
    asyncio.run(serve(settings))
