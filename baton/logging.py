"""structlog set-up: JSON for production, a readable console for `make dev`.

Log events carry ids (conversation, workflow, message) and never message text.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Route the standard library's logs (temporalio, uvicorn) through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer], foreign_pre_chain=shared
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


class _DropKnownNoise(logging.Filter):
    # The test server does not advertise a capability that only matters for heartbeat details on failure.
    def filter(self, record: logging.LogRecord) -> bool:
        return "activity_failure_include_heartbeat" not in record.getMessage()


def configure_temporal_runtime(core_level: str = "WARN") -> None:
    """Send the Temporal core's own logs through Python logging (stderr), never to stdout."""
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    core_logger = logging.getLogger("temporalio.core")
    core_logger.addFilter(_DropKnownNoise())
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level=core_level, other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=core_logger),
            )
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
