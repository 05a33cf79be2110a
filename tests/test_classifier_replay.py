"""A model upgrade never changes the scores a conversation already received, nor breaks its replay.

A conversation is scored by one model version; a worker holding another version then takes over
(a new worker replays the history first), and the saved history replays with no worker at all.
"""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from baton.apps.client import get_state, handle, send_message
from baton.classifier import Classifier, default_classifier
from baton.contract.messages import ConversationStart, Intent, MessageIn
from baton.settings import Settings
from baton.worker.wiring import WORKFLOWS, build_worker


def another_version(base: Classifier, version: str, human_shift: float) -> Classifier:
    """The shipped model with another version name and its human_request output moved."""
    bias = base.bias.copy()
    bias[base.intents.index(Intent.HUMAN_REQUEST)] += human_shift
    return dataclasses.replace(base, version=version, bias=bias)


def start() -> ConversationStart:
    return ConversationStart(
        conversation_id=f"upgrade-{uuid.uuid4().hex[:8]}", customer_id="c-1", channel="chat", customer={"tier": "smb"}
    )


async def test_a_new_model_keeps_old_scores_and_replays(env: WorkflowEnvironment, task_queue: str) -> None:
    client: Client = env.client
    settings = Settings(task_queue=task_queue)
    old = another_version(default_classifier(), "test-old", human_shift=0.0)
    new = another_version(default_classifier(), "test-new", human_shift=-40.0)  # never sees a human request
    conversation = start()
    text = "I want to talk to a human about my invoice"
    assert Intent.HUMAN_REQUEST in old.score(text).intents
    assert Intent.HUMAN_REQUEST not in new.score(text).intents

    # No sticky cache: the next worker gets the conversation's tasks at once, not after a sticky timeout.
    async with build_worker(client, settings, classifier=old, max_cached_workflows=0):
        first = await send_message(
            client, task_queue, conversation, MessageIn(message_id="m1", role="customer", text="hello there")
        )
        before = await get_state(client, conversation.conversation_id)
    assert first.signals is not None and first.signals.model_version == "test-old"

    # Another worker, another model: it replays the conversation's history before the next message.
    async with build_worker(client, settings, classifier=new):
        second = await send_message(
            client, task_queue, conversation, MessageIn(message_id="m2", role="customer", text=text)
        )
        again = await send_message(
            client, task_queue, conversation, MessageIn(message_id="m1", role="customer", text="hello there")
        )
        # A gateway still on the old model scores on the way in: its scores travel with the message.
        third = await send_message(
            client, task_queue, conversation, MessageIn(message_id="m3", role="customer", text=text), scorer=old
        )
        after = await get_state(client, conversation.conversation_id)
    assert again == first  # the answer a client got is the answer it gets again
    assert after.transcript[0].signals == before.transcript[0].signals
    assert after.model_version == "test-old"  # pinned at the first score
    assert second.signals is not None and second.signals.model_version == "test-new"
    assert second.action == "continue"  # this worker's model saw no request; the first model's score stood
    assert third.signals is not None and third.signals.model_version == "test-old"
    assert third.action == "escalate" and [t.id for t in third.triggers] == ["explicit_human_request"]

    history = await handle(client, conversation.conversation_id).fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)  # no activity runs in replay: the recorded scores are used


@pytest.mark.parametrize("shift", [-40.0, 40.0])
def test_versions_differ_only_where_moved(shift: float) -> None:
    base = default_classifier()
    moved = another_version(base, "moved", shift)
    a, b = base.score("where is my invoice"), moved.score("where is my invoice")
    assert a.topic == b.topic and a.frustration == b.frustration
    assert not np.isclose(a.probabilities[Intent.HUMAN_REQUEST], b.probabilities[Intent.HUMAN_REQUEST])
