"""Scaling out: two workers on one task queue of one Temporal server share the conversations.

Nothing of a conversation lives in a worker (docs/deploy.md): any worker on the task queue can run
any workflow task or activity, so adding workers adds capacity. Each worker here has its own client
identity, which the server writes into every workflow task it completes.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import send_message, workflow_id
from baton.contract.messages import ConversationStart, MessageIn
from baton.settings import Settings
from baton.worker.connection import DATA_CONVERTER
from baton.worker.wiring import build_worker

CONVERSATIONS = 16


async def completed_history(client: Client, conversation_id: str) -> list[HistoryEvent]:
    """The history once it shows the first workflow task completed: an update's result can reach the caller
    a moment before the server has written that task's completion."""
    handle = client.get_workflow_handle(workflow_id(conversation_id))
    for _ in range(50):
        events = list((await handle.fetch_history()).events)
        if any(event.HasField("workflow_task_completed_event_attributes") for event in events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"{conversation_id}: no workflow task completed in its history")


async def test_two_workers_on_one_task_queue_both_take_conversations(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    target = dev_env.client.service_client.config.target_host
    workers = {}
    for name in ("worker-a", "worker-b"):
        client = await Client.connect(
            target, namespace=dev_env.client.namespace, data_converter=DATA_CONVERTER, identity=name
        )
        workers[name] = build_worker(client, Settings(task_queue=task_queue))
    conversations = [f"scale-{uuid.uuid4().hex[:8]}" for _ in range(CONVERSATIONS)]

    async def converse(conversation_id: str, index: int) -> str:
        start = ConversationStart(conversation_id=conversation_id, customer_id="cus_enterprise", channel="chat")
        text = "I want to talk to a human" if index % 2 else "Where can I download my invoices?"
        decision = await send_message(
            dev_env.client, task_queue, start, MessageIn(message_id="m1", role="customer", text=text)
        )
        return decision.action

    async with workers["worker-a"], workers["worker-b"]:
        actions = await asyncio.gather(*(converse(cid, i) for i, cid in enumerate(conversations)))
        assert actions.count("escalate") == CONVERSATIONS // 2 and actions.count("continue") == CONVERSATIONS // 2

        ran_by: dict[str, set[str]] = {}
        for cid in conversations:
            for event in await completed_history(dev_env.client, cid):
                if event.HasField("workflow_task_completed_event_attributes"):
                    identity = event.workflow_task_completed_event_attributes.identity
                    ran_by.setdefault(identity, set()).add(cid)
                elif event.HasField("activity_task_started_event_attributes"):
                    identity = event.activity_task_started_event_attributes.identity
                    ran_by.setdefault(identity, set()).add(cid)
        for cid in conversations:
            await dev_env.client.get_workflow_handle(workflow_id(cid)).terminate("test over")

    assert set(ran_by) <= set(workers), f"tasks completed by someone else: {set(ran_by) - set(workers)}"
    assert ran_by.get("worker-a") and ran_by.get("worker-b"), {name: len(c) for name, c in ran_by.items()}
    assert set().union(*ran_by.values()) == set(conversations)
