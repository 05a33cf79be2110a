"""The two ways `baton replay` decides, behind one interface: the engine (the workflow's decision functions
without Temporal, in parallel: apps/replay/engine.py) and the real workflow on the time-skipping test server
(apps/replay/runner.py). `choose_replayer` picks the engine unless the output needs the workflow: the handoff
message and note (`--handoff`), or a policy that asks the LLM judge about uncertain messages.

Each shows a progress bar over the conversations (on a terminal only: baton.apps.progress) while it works.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from types import TracebackType
from typing import TextIO

from baton.apps.progress import Bar, progress
from baton.apps.replay.engine import replay_engine
from baton.apps.replay.policy import replayed_policy
from baton.apps.replay.records import ReplayRecord
from baton.apps.replay.transcripts import ReplayConversation
from baton.classifier.scorer import Scorer, scorer_for
from baton.settings import get_settings

Pair = tuple[list[ReplayRecord], list[ReplayRecord]]


class Replayer(AbstractContextManager["Replayer"]):
    """Replays transcripts under one policy, two policies, or one policy with two classifiers."""

    name = ""

    def __init__(self, total: int) -> None:
        self._total = total
        self._stack = ExitStack()
        self._bar: Bar | None = None

    def __enter__(self) -> Replayer:
        self._bar = self._stack.enter_context(progress(self._total, f"replay ({self.name})", "conv"))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stack.close()
        self._bar = None

    def _advance(self, batch: list[ReplayRecord]) -> None:
        if self._bar is not None:
            self._bar.update(len(batch))

    def one(self, conversations: list[ReplayConversation], policy_file: str | None, out: TextIO) -> list[ReplayRecord]:
        raise NotImplementedError

    def both(self, conversations: list[ReplayConversation], policy_a: str, policy_b: str) -> Pair:
        raise NotImplementedError

    def models(
        self, conversations: list[ReplayConversation], policy_file: str | None, model_a: Scorer, model_b: Scorer
    ) -> Pair:
        raise NotImplementedError


class EngineReplayer(Replayer):
    name = "engine"

    def __init__(self, total: int, workers: int | None) -> None:
        super().__init__(total)
        self._workers = workers

    def _run(
        self,
        conversations: list[ReplayConversation],
        policy_file: str | None,
        scorer: Scorer | None = None,
        on_records: Callable[[list[ReplayRecord]], None] | None = None,
    ) -> list[ReplayRecord]:
        def done(batch: list[ReplayRecord]) -> None:
            if on_records is not None:
                on_records(batch)
            self._advance(batch)

        return replay_engine(
            conversations,
            replayed_policy(policy_file),
            scorer or scorer_for(get_settings()),
            workers=self._workers,
            on_records=done,
        )

    def one(self, conversations: list[ReplayConversation], policy_file: str | None, out: TextIO) -> list[ReplayRecord]:
        def write(batch: list[ReplayRecord]) -> None:
            out.writelines(record.json_line() + "\n" for record in batch)
            out.flush()

        return self._run(conversations, policy_file, on_records=write)

    def both(self, conversations: list[ReplayConversation], policy_a: str, policy_b: str) -> Pair:
        return self._run(conversations, policy_a), self._run(conversations, policy_b)

    def models(
        self, conversations: list[ReplayConversation], policy_file: str | None, model_a: Scorer, model_b: Scorer
    ) -> Pair:
        return self._run(conversations, policy_file, model_a), self._run(conversations, policy_file, model_b)


class WorkflowReplayer(Replayer):
    name = "workflow"

    def one(self, conversations: list[ReplayConversation], policy_file: str | None, out: TextIO) -> list[ReplayRecord]:
        from baton.apps.replay.runner import replay

        return asyncio.run(replay(conversations, policy_file, out, on_batch=self._advance))

    def both(self, conversations: list[ReplayConversation], policy_a: str, policy_b: str) -> Pair:
        from baton.apps.replay.runner import replay_both

        return asyncio.run(replay_both(conversations, policy_a, policy_b, on_batch=self._advance))

    def models(
        self, conversations: list[ReplayConversation], policy_file: str | None, model_a: Scorer, model_b: Scorer
    ) -> Pair:
        from baton.apps.replay.runner import replay_models

        return asyncio.run(replay_models(conversations, policy_file, model_a, model_b, on_batch=self._advance))


def choose_replayer(
    engine: str | None, *, handoff: bool, policy_files: list[str | None], workers: int | None, total: int
) -> Replayer:
    """The replayer for what was asked; ValueError (naming the option) for a combination that cannot work.

    The policies must load (checked before)."""
    judged = any(replayed_policy(path).judge.enabled for path in policy_files)
    if engine == "engine" and handoff:
        raise ValueError("--handoff needs the workflow: use --engine workflow, or leave --engine out")
    if engine is None:
        engine = "workflow" if handoff or judged else "engine"
    if engine == "workflow":
        if workers is not None:
            raise ValueError("--workers applies to the engine (--engine engine); the workflow replays in one process")
        return WorkflowReplayer(total)
    if judged:
        print(
            "replay: the policy enables the LLM judge, which the engine does not consult: uncertain messages keep "
            "the classifier's reading (--engine workflow asks the judge)",
            file=sys.stderr,
        )
    return EngineReplayer(total, workers)
