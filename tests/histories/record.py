"""Record a conversation history for the replay test.

Run after a deliberate, versioned change to ConversationWorkflow:
    .venv/bin/python -m tests.histories.record tests/histories/vN_what_changed.json [--idle]
(`--idle`: the conversation ends by itself after the policy's idle time, not by the close signal.)
Keep the old files: each one proves that today's code still replays yesterday's conversations.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import yaml
from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baton.apps.binaries import test_server
from baton.apps.client import close, handle, pickup, resolve, send_message
from baton.contract.messages import ConversationStart, CustomerFacts, MessageIn, PickupRequest, ResolveRequest
from baton.policies import load_policy
from baton.settings import Settings
from baton.store.database import migrate_async
from baton.worker.connection import register_search_attributes
from baton.worker.wiring import build_worker

SCRIPT = [
    ("m1", "customer", "How do I export my reports to CSV?"),
    ("b1", "bot", "Open Reports and click Download."),
    ("m2", "customer", "There is no download button, how do I export reports to CSV?"),
    ("b2", "bot", "Open Reports and click Download."),
    ("m2", "customer", "duplicate delivery of m2"),
    ("m3", "customer", ""),
    ("m4", "customer", "this STILL doesn't work, I want to talk to a human!!"),
    ("b3", "bot", "Sorry about that."),
]


async def record(path: Path, idle: bool = False) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server(), data_converter=pydantic_data_converter
    )
    async with env:
        await register_search_attributes(env.client)
        scratch = Path(tempfile.mkdtemp(prefix="baton-record-"))
        store_url = f"sqlite+aiosqlite:///{scratch / 'baton.db'}"
        await migrate_async(store_url)
        # Always open, so the recording does not depend on the hour it is made at.
        policy = load_policy("default").model_copy(update={"hours": None})
        (scratch / "policy.yaml").write_text(yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False))
        settings = Settings(task_queue="record-history", database_url=store_url, policy=str(scratch / "policy.yaml"))
        start = ConversationStart(
            conversation_id="history-1",
            customer_id="cus_recorded",
            channel="chat",
            customer=CustomerFacts(tier="mid_market", mrr=1500),
        )
        async with build_worker(env.client, settings):
            for message_id, role, text in SCRIPT:
                with contextlib.suppress(WorkflowUpdateFailedError):  # the empty message is rejected on purpose
                    await send_message(
                        env.client, settings.task_queue, start, MessageIn(message_id=message_id, role=role, text=text)
                    )
            if idle:
                # Picked up and resolved, then nobody writes: the idle timer closes it.
                await pickup(env.client, start.conversation_id, PickupRequest(agent_id="agent-1"))
                await resolve(
                    env.client, start.conversation_id, ResolveRequest(agent_id="agent-1", necessary=True, csat=4)
                )
                await env.sleep(policy.idle_close.default + timedelta(minutes=1))
            else:
                await close(env.client, start.conversation_id, reason="recorded")
            await handle(env.client, start.conversation_id).result()
            history = await handle(env.client, start.conversation_id).fetch_history()
    path.write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(record(Path(sys.argv[1]), idle="--idle" in sys.argv[2:]))
