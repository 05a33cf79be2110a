"""Logging survives the stream it was set up with being replaced and closed."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from baton.logging import configure_logging, get_logger


def test_logs_go_to_the_current_stderr_after_the_first_one_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("json", "INFO")
    first.close()  # e.g. a command run in-process under a test runner's capture, which then ends

    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("baton.test").info("after_close", conversation_id="c1")
    logging.getLogger("temporalio.test").warning("standard library record")

    written = second.getvalue()
    assert '"event": "after_close"' in written and '"conversation_id": "c1"' in written
    assert "standard library record" in written
