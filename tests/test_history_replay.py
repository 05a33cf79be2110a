"""Saved histories replay against today's workflow code (determinism guard)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from baton.contract.messages import ConversationInput, ConversationSummary
from baton.settings import Settings
from baton.worker.connection import data_converter
from baton.worker.wiring import WORKFLOWS
from baton.workflows.conversation import ConversationWorkflow

HISTORIES = sorted(Path(__file__).with_name("histories").glob("*.json"))
# The converter every client builds from its settings (with the payload codec when a key is configured).
CONVERTER = data_converter(Settings())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"conversation-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    await replayer.replay_workflow(history)


def test_histories_exist() -> None:
    assert HISTORIES, "no saved histories; record one with tests/histories/record.py"


@workflow.defn(name="ConversationWorkflow", sandboxed=False)
class WorkflowWithoutSearchAttributes(ConversationWorkflow):
    """Today's workflow with one command removed, as a careless change would."""

    @workflow.run
    async def run(self, input: ConversationInput) -> ConversationSummary:
        return await super().run(input)

    def _publish(self) -> None:
        pass


async def test_a_changed_workflow_fails_replay() -> None:
    """The guard can fail: code that issues different commands is reported as non-deterministic."""
    history = WorkflowHistory.from_json("changed", HISTORIES[0].read_text())
    replayer = Replayer(workflows=[WorkflowWithoutSearchAttributes], data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
