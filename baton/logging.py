"""structlog set-up: JSON for production, a readable console for `make dev`.

Log events carry ids (conversation, workflow, message) and never message text.
"""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """A structlog logger that writes each line to the `sys.stderr` of the moment it logs.

    Holding on to the stream found at set-up breaks when that stream is replaced and closed later (a
    command run in-process under a test runner's capture, a daemon re-pointing its output).
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler bound to whatever `sys.stderr` is when a record is written (see `_CurrentStderr`)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


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
        logger_factory=lambda *_args: _CurrentStderr(),
        cache_logger_on_first_use=False,
    )
    # Route the standard library's logs (temporalio, uvicorn) through the same renderer.
    handler = _CurrentStderrHandler()
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
