"""`baton replay`: recorded transcripts through the real workflow on the time-skipping test server.

Each conversation's timeline is rebased onto the test server's clock: message
gaps are kept (skipped, not waited), and the customer's dates (account
creation, renewal) are shifted by the same amount so that lifecycle rules see
the account as it was when the conversation happened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.crm import EmbeddedCrm
from baton.binaries import test_server
from baton.client import close, get_state, send_message
from baton.messages import ConversationStart, CustomerFacts, HandoffNote, MessageIn, Role, TriggerHit
from baton.settings import Settings
from policies import PolicyError, load_policy
from worker.wiring import build_worker
from workflows import search_attributes

CUSTOMER_GAP = timedelta(seconds=20)
BOT_GAP = timedelta(seconds=2)
TYPING_SECONDS_PER_CHAR = 0.2
MAX_TYPING = timedelta(seconds=100)
NOTE_WAIT_SECONDS = 60.0
BATCH_SIZE = 50  # conversations sharing one timeline; bounded by the server's in-flight updates


class ReplayCustomer(CustomerFacts):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)


class ReplayMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Role
    text: str
    at: datetime | None = None


class ReplayLabel(BaseModel):
    model_config = ConfigDict(extra="allow")
    escalate: bool | None = None
    urgency: str | None = None


class ReplayConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    conversation_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")
    customer: ReplayCustomer
    channel: str = "chat"
    started_at: datetime | None = None
    messages: list[ReplayMessage] = Field(min_length=1)
    label: ReplayLabel | None = None


class ReplayInputError(ValueError):
    pass


def read_transcripts(lines: Iterable[str], source: str) -> list[ReplayConversation]:
    """Parse and validate every line before anything runs; errors name line and field."""
    conversations, problems, seen = [], [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            conv = ReplayConversation.model_validate_json(line)
        except ValidationError as err:
            for e in err.errors():
                field = ".".join(str(p) for p in e["loc"]) or "(line)"
                problems.append(f"{source}:{number}: {field}: {e['msg']}")
            continue
        if conv.conversation_id in seen:
            problems.append(f"{source}:{number}: conversation_id: duplicate '{conv.conversation_id}'")
        seen.add(conv.conversation_id)
        conversations.append(conv)
    if problems:
        raise ReplayInputError("\n".join(problems))
    return conversations


def message_times(conv: ReplayConversation) -> list[timedelta]:
    """Offsets of each message from the conversation's start, realistic where `at` is missing."""
    origin = conv.started_at or next((m.at for m in conv.messages if m.at is not None), None)
    offsets: list[timedelta] = []
    previous = timedelta(0)
    for i, m in enumerate(conv.messages):
        if m.at is not None and origin is not None:
            offset = max(previous, m.at - origin)
        elif i == 0:
            offset = timedelta(0)
        elif m.role == "customer":
            typing = min(MAX_TYPING, timedelta(seconds=len(m.text) * TYPING_SECONDS_PER_CHAR))
            offset = previous + CUSTOMER_GAP + typing
        else:
            offset = previous + BOT_GAP
        offsets.append(offset)
        previous = offset
    return offsets


def _shift_date(value: date | None, days: int) -> date | None:
    return None if value is None else value + timedelta(days=days)


def rebase_customer(conv: ReplayConversation, replay_now: datetime) -> CustomerFacts:
    facts = CustomerFacts.model_validate(conv.customer.model_dump(exclude={"id"}))
    if conv.started_at is None:
        return facts
    days = (replay_now.date() - conv.started_at.date()).days
    return facts.model_copy(
        update={
            "account_created_at": _shift_date(facts.account_created_at, days),
            "renewal_date": _shift_date(facts.renewal_date, days),
            "last_escalation_at": facts.last_escalation_at + timedelta(days=days) if facts.last_escalation_at else None,
        }
    )


class ConversationReplay:
    """One transcript being replayed: sends its messages and collects the record."""

    def __init__(self, conv: ReplayConversation, run_id: str, replay_now: datetime) -> None:
        self.conv = conv
        self.offsets = message_times(conv)
        self.start = ConversationStart(
            conversation_id=f"replay-{run_id}-{conv.conversation_id}",
            customer_id=conv.customer.id,
            channel=conv.channel,
            customer=rebase_customer(conv, replay_now),
        )
        self.decisions: list[dict[str, Any]] = []
        self.at_message: int | None = None
        self.urgency: str | None = None
        self.fired: dict[str, TriggerHit] = {}
        self.handoff_message: str | None = None
        self.note: HandoffNote | None = None

    async def wait_for_note(self, client: Client, timeout: float = NOTE_WAIT_SECONDS) -> None:
        """The note is written in the background after an escalation; give it a bounded time."""
        if self.at_message is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = await get_state(client, self.start.conversation_id)
            escalations = [*state.past_escalations, *([state.escalation] if state.escalation else [])]
            if escalations and escalations[0].note is not None:
                self.note = escalations[0].note
                return
            await asyncio.sleep(0.05)

    async def send(self, client: Client, task_queue: str, index: int) -> None:
        message = self.conv.messages[index]
        incoming = MessageIn(message_id=f"m{index}", role=message.role, text=message.text)
        try:
            decision = await send_message(client, task_queue, self.start, incoming)
        except WorkflowUpdateFailedError as err:
            reason = str(err.cause) if err.cause else str(err)
            self.decisions.append({"message_index": index, "action": "rejected", "error": reason})
            return
        if message.role != "customer":
            return
        if decision.action == "escalate" and self.at_message is None:
            self.handoff_message = decision.customer_text
        if decision.action == "escalate":
            self.at_message = index if self.at_message is None else self.at_message
            self.urgency = decision.urgency
            for hit in decision.triggers:
                self.fired.setdefault(hit.id, hit)
        signals = decision.signals
        self.decisions.append(
            {
                "message_index": index,
                "action": decision.action,
                "urgency": decision.urgency,
                "signals": {
                    "sentiment": signals.sentiment,
                    "frustration": signals.frustration,
                    "intents": [i.value for i in signals.intents],
                }
                if signals
                else None,
            }
        )

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "conversation_id": self.conv.conversation_id,
            "escalated": self.at_message is not None,
            "urgency": self.urgency,
            "at_message": self.at_message,
            "triggers": [{"id": t.id, "category": t.category} for t in self.fired.values()],
            "decisions": self.decisions,
        }
        if self.at_message is not None:
            record["seconds_to_escalation"] = self.offsets[self.at_message].total_seconds()
            record["handoff_message"] = self.handoff_message
            record["note_summary"] = self.note.summary if self.note else None
            record["note_source"] = self.note.source if self.note else None
        if self.conv.label is not None:
            record["label"] = self.conv.label.model_dump(exclude_none=True)
        return record


async def replay_batch(
    env: WorkflowEnvironment, task_queue: str, batch: list[ReplayConversation], run_id: str
) -> list[dict[str, Any]]:
    """Replay a batch on one shared timeline.

    All conversations of a batch start together; the test server's clock is
    moved to each distinct message offset in turn, and the messages due then
    are sent concurrently (in order within a conversation). Every conversation
    thus sees its own gaps exactly, while the batch shares the round trips.
    """
    client = env.client
    replay_now = await env.get_current_time()
    replays = [ConversationReplay(conv, run_id, replay_now) for conv in batch]
    due: dict[timedelta, list[tuple[int, int]]] = {}
    for c, rep in enumerate(replays):
        for m, offset in enumerate(rep.offsets):
            due.setdefault(offset, []).append((c, m))
    elapsed = timedelta(0)
    for offset in sorted(due):
        if offset > elapsed:
            await env.sleep(offset - elapsed)
            elapsed = offset
        by_conversation: dict[int, list[int]] = {}
        for c, m in due[offset]:
            by_conversation.setdefault(c, []).append(m)

        async def send_in_order(c: int, indexes: list[int]) -> None:
            for m in indexes:
                await replays[c].send(client, task_queue, m)

        await asyncio.gather(*(send_in_order(c, ms) for c, ms in by_conversation.items()))
    await asyncio.gather(*(rep.wait_for_note(client) for rep in replays))
    await asyncio.gather(*(close(client, rep.start.conversation_id, reason="replay finished") for rep in replays))
    return [rep.record() for rep in replays]


async def replay(
    conversations: list[ReplayConversation], policy_file: str | None, out: TextIO, batch_size: int = BATCH_SIZE
) -> list[dict[str, Any]]:
    settings = Settings(task_queue=f"replay-{uuid.uuid4().hex[:8]}", policy=policy_file or "default")
    run_id = uuid.uuid4().hex[:8]
    records = []
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server(), data_converter=pydantic_data_converter
    )
    async with env:
        await search_attributes.register(env.client)
        # The transcript carries the customer's facts; no CRM is consulted.
        async with build_worker(env.client, settings, crm=EmbeddedCrm(customers={})):
            for i in range(0, len(conversations), batch_size):
                for record in await replay_batch(env, settings.task_queue, conversations[i : i + batch_size], run_id):
                    out.write(json.dumps(record) + "\n")
                    records.append(record)
                out.flush()
    return records


def summarize(records: list[dict[str, Any]], elapsed: float) -> str:
    total = len(records)
    escalated = [r for r in records if r["escalated"]]
    lines = [
        f"replayed {total} conversations in {elapsed:.1f}s",
        f"escalated: {len(escalated)} ({100 * len(escalated) / total:.1f}%)" if total else "escalated: 0",
    ]
    urgencies = Counter(r["urgency"] for r in escalated)
    if urgencies:
        lines.append("  by urgency: " + ", ".join(f"{k} {v}" for k, v in sorted(urgencies.items())))
    triggers = Counter(t["id"] for r in records for t in r["triggers"])
    if triggers:
        lines.append("  triggers: " + ", ".join(f"{k} {v}" for k, v in triggers.most_common()))
    rejected = sum(1 for r in records for d in r["decisions"] if d.get("action") == "rejected")
    if rejected:
        lines.append(f"rejected messages: {rejected} (see 'error' in the records)")
    labelled = [r for r in records if r.get("label", {}).get("escalate") is not None]
    if labelled:
        tp = sum(1 for r in labelled if r["escalated"] and r["label"]["escalate"])
        fp = sum(1 for r in labelled if r["escalated"] and not r["label"]["escalate"])
        fn = sum(1 for r in labelled if not r["escalated"] and r["label"]["escalate"])
        tn = len(labelled) - tp - fp - fn
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines.append(
            f"against labels ({len(labelled)}): precision {precision:.2f}, recall {recall:.2f}, F1 {f1:.2f} "
            f"(tp {tp}, fp {fp}, fn {fn}, tn {tn})"
        )
    return "\n".join(lines)


def run_replay_command(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        with path.open(encoding="utf-8") as f:
            conversations = read_transcripts(f, str(path))
    except OSError as err:
        print(f"{path}: cannot read: {err.strerror or err}", file=sys.stderr)
        return 2
    except ReplayInputError as err:
        print(err, file=sys.stderr)
        return 2
    if args.policy:
        try:
            load_policy(args.policy)
        except PolicyError as err:
            print(err, file=sys.stderr)
            return 2
    began = time.monotonic()
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        records = asyncio.run(replay(conversations, args.policy, out))
    finally:
        if args.output:
            out.close()
    print(summarize(records, time.monotonic() - began), file=sys.stderr)
    return 0
