"""`baton replay`: recorded transcripts through the real workflow on the time-skipping test server.

One concern a module: ``transcripts`` (the JSONL read and checked, each conversation's timeline),
``records`` (the typed ``ReplayRecord`` printed per conversation), ``runner`` (the workflow driven on the test
server), ``summary`` (the summary on stderr) and ``command`` (`baton replay`). Labelled transcripts turn a
replay into an evaluation (apps/evaluation.py); `--compare A B` replays under two policies and gates on F1.

Importing this package loads the transcripts and records only: the runner (the test server, a worker) and the
command load when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.apps.replay.records import (
    DecisionSignals,
    FiredTrigger,
    MessageDecision,
    RejectedMessage,
    ReplayLabel,
    ReplayRecord,
)
from baton.apps.replay.transcripts import (
    ReplayConversation,
    ReplayCustomer,
    ReplayInputError,
    ReplayMessage,
    message_times,
    read_transcripts,
    rebase_customer,
)

if TYPE_CHECKING:
    from baton.apps.replay.command import run_replay_command
    from baton.apps.replay.runner import replay, replay_both

__all__ = [
    "DecisionSignals",
    "FiredTrigger",
    "MessageDecision",
    "RejectedMessage",
    "ReplayConversation",
    "ReplayCustomer",
    "ReplayInputError",
    "ReplayLabel",
    "ReplayMessage",
    "ReplayRecord",
    "message_times",
    "read_transcripts",
    "rebase_customer",
    "replay",
    "replay_both",
    "run_replay_command",
]


def __getattr__(name: str) -> Any:
    if name == "run_replay_command":
        from baton.apps.replay.command import run_replay_command

        return run_replay_command
    if name in ("replay", "replay_both"):
        from baton.apps.replay.runner import replay, replay_both

        return {"replay": replay, "replay_both": replay_both}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
