"""`baton worker`: run the conversation worker until SIGINT/SIGTERM, then drain."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from baton import heap
from baton.logging import configure_logging, get_logger
from baton.settings import Settings, get_settings
from baton.store.database import migrate_async
from baton.worker.connection import connect
from baton.worker.health import serve_health
from baton.worker.telemetry import runtime_for, tracing_for
from baton.worker.wiring import build_worker

log = get_logger(__name__)


def redacted(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    # The store's schema is brought to head before any activity can write to it.
    await migrate_async(settings.database_url)
    log.info("store_migrated", database=redacted(settings.database_url))
    tracing = tracing_for(settings, "baton-worker")
    runtime = runtime_for(settings)
    if runtime is not None:
        log.info("worker_metrics_listening", address=settings.worker_metrics_address)
    client = await connect(settings, runtime=runtime, interceptors=tracing.interceptors)
    worker = build_worker(client, settings)
    heap.settle()  # the classifier and policies are loaded: keep them out of garbage collection
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    health = None
    try:
        async with worker:
            if settings.worker_health_address:
                health = await serve_health(worker, settings.worker_health_address)
            log.info(
                "worker_started",
                task_queue=settings.task_queue,
                address=settings.temporal_address,
                policy=settings.policy,
            )
            await stop.wait()
            log.info("worker_stopping", grace_seconds=settings.worker_shutdown_seconds)
            if health is not None:
                health.close()  # not ready while draining: orchestrators stop sending it work
    finally:
        if health is not None:
            health.close()
            await health.wait_closed()
        tracing.shutdown()
    log.info("worker_stopped")


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
