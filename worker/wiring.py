"""Build clients and workers the same way everywhere: dev, tests, replay."""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.crm import CrmAdapter, EmbeddedCrm
from activities.policy import PolicyStore
from activities.setup import SetupActivities
from baton.settings import Settings
from workflows.conversation import ConversationWorkflow

WORKFLOWS = [ConversationWorkflow]


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
    )


def build_activities(settings: Settings, crm: CrmAdapter | None = None) -> list:
    setup = SetupActivities(crm or EmbeddedCrm(settings.crm_file), PolicyStore(settings.policy))
    return [setup.prepare_conversation]


def build_worker(
    client: Client, settings: Settings, *, crm: CrmAdapter | None = None, task_queue: str | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(settings, crm),
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=8),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
    )
