"""Record a conversation history for the replay test.

Run after a deliberate, versioned change to ConversationWorkflow:
    .venv/bin/python -m tests.histories.record tests/histories/vN_what_changed.json [--idle] [--model-upgrade]
(`--idle`: the conversation ends by itself after the policy's idle time, not by the close signal.
`--model-upgrade`: another model version is promoted after the second message: the gateway scores the rest
with it, the worker scores them again with the version the conversation pinned.)
Keep the old files: each one proves that today's code still replays yesterday's conversations.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
from baton.classifier.model import Classifier, default_classifier
from baton.contract.messages import (
    ConversationStart,
    CustomerFacts,
    Intent,
    MessageIn,
    PickupRequest,
    ResolveRequest,
)
from baton.contract.scoring import MessageScores
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


@dataclasses.dataclass
class Promoted:
    """A worker's scorer after a promotion: `new` for new conversations, `old` for those that pinned it."""

    old: Classifier
    new: Classifier

    @property
    def version(self) -> str:
        return self.new.version

    def score(self, text: str) -> MessageScores:
        return self.new.score(text)

    def for_version(self, version: str) -> Classifier | None:
        return {self.old.version: self.old, self.new.version: self.new}.get(version)


def versions() -> Promoted:
    """The shipped weights under two version names, the second never reading a request for a person."""
    base = default_classifier()
    bias = base.bias.copy()
    bias[base.intents.index(Intent.HUMAN_REQUEST)] -= 40.0
    return Promoted(
        old=dataclasses.replace(base, version="history-old"),
        new=dataclasses.replace(base, version="history-new", bias=bias),
    )


async def record(path: Path, idle: bool = False, model_upgrade: bool = False) -> None:
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
        promoted = versions() if model_upgrade else None
        async with build_worker(env.client, settings, classifier=promoted):
            for index, (message_id, role, text) in enumerate(SCRIPT):
                # With --model-upgrade the gateway scores the first two messages with the old version, then the new.
                gateway = (promoted.old if index < 2 else promoted.new) if promoted else None
                with contextlib.suppress(WorkflowUpdateFailedError):  # the empty message is rejected on purpose
                    await send_message(
                        env.client,
                        settings.task_queue,
                        start,
                        MessageIn(message_id=message_id, role=role, text=text),
                        gateway,
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
    asyncio.run(
        record(Path(sys.argv[1]), idle="--idle" in sys.argv[2:], model_upgrade="--model-upgrade" in sys.argv[2:])
    )
