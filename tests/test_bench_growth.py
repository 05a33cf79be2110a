"""The growth bench's own pieces (bench/growth.py), small: its policy keeps a long conversation with the bot and
never closes an idle one, and its history walk finds every run continue-as-new made, on the dev server that
suggests continue-as-new after a few dozen events. `python -m bench.growth` runs them at full size."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from baton.apps.client import workflow_id
from baton.classifier.scorer import scorer_for
from baton.policies.loader import load_policy
from baton.settings import Settings
from baton.worker.wiring import build_worker
from bench.growth import (
    BOT_MESSAGES,
    COUNT_TRIGGER_KINDS,
    Driver,
    actions_part,
    growth_policy,
    rss_kib,
    run_histories,
)
from tests.conftest import SUGGEST_CONTINUE_AS_NEW_AT

MESSAGES = 24  # past the default policy's unresolved-turns threshold for the bench's customer (11)


def test_the_growth_policy_is_the_default_one_with_count_triggers_out_of_reach_and_no_idle_close(
    tmp_path: Path,
) -> None:
    policy = load_policy(str(growth_policy(tmp_path)))
    default = load_policy("default")
    assert [t.id for t in policy.triggers] == [t.id for t in default.triggers]
    counted = [t for t in policy.triggers if t.when.kind in COUNT_TRIGGER_KINDS]
    assert counted and all(t.when.threshold >= 10_000 for t in counted)
    assert policy.idle_close.after("chat") is None and policy.idle_close.after("email") is None


def test_rss_is_read_from_proc() -> None:
    assert rss_kib(os.getpid()) > 10_000


async def test_a_long_conversation_stays_with_the_bot_and_every_run_is_found(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    task_queue = f"growth-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=task_queue, policy=str(growth_policy(tmp_path)))
    driver = Driver(dev_env.client, task_queue, scorer_for(settings))
    conversation_id = driver.new_id("long", 0)
    async with build_worker(dev_env.client, settings):
        for _ in range(MESSAGES):
            await driver.send(conversation_id)  # raises on any decision but "continue"
        runs = await run_histories(dev_env.client, workflow_id(conversation_id))
    assert len(runs) >= 2, runs
    assert sum(run["updates"] for run in runs) == MESSAGES
    # The server suggests continue-as-new at SUGGEST_CONTINUE_AS_NEW_AT events; a run ends at the next quiet point.
    assert all(run["events"] < 3 * SUGGEST_CONTINUE_AS_NEW_AT for run in runs[:-1])
    assert runs[-1]["input_bytes"] > runs[0]["input_bytes"]  # the later runs carry the transcript


async def test_actions_are_counted_over_every_workflow_a_conversation_uses(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    result = await actions_part(dev_env.client, tmp_path, conversations=1)
    bot, escalated = result["bot_only"], result["escalated"]
    # At least a start and one accepted update per customer message, and the close signal.
    assert bot["actions_per_conversation"] >= 1 + BOT_MESSAGES + 1
    assert bot["event_types_per_conversation"]["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"] == BOT_MESSAGES
    # An escalation reaches the team queue's workflow: events beyond the conversation's own.
    assert escalated["actions_per_conversation"] > escalated["customer_messages"] + 3
    assert escalated["event_types_per_conversation"].get("WORKFLOW_EXECUTION_SIGNALED", 0) >= 1
