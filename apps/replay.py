"""`baton replay`: recorded transcripts through the real workflow on the time-skipping test server.

Each conversation's timeline is rebased onto the test server's clock: message
gaps are kept (skipped, not waited), and the customer's dates (account
creation, renewal) are shifted by the same amount so that lifecycle rules see
the account as it was when the conversation happened.

Labelled transcripts (`label.escalate`, optionally `urgency` and `triggers`)
turn a replay into an evaluation: the summary gives precision, recall and F1,
per-trigger precision, urgency accuracy and time to escalation
(baton/evaluation.py). `--compare A B` replays the same transcripts under two
policies and lists the conversations whose outcome changed; it fails (exit 1)
when B's F1 is more than `--max-f1-drop` (default 0.02) below A's, so that a
policy change can be gated in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import ExitStack, asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baton.activities.crm import EmbeddedCrm
from baton.apps import evaluation
from baton.apps.binaries import test_server
from baton.apps.client import close, get_state, send_message
from baton.contract.messages import ConversationStart, CustomerFacts, HandoffNote, MessageIn, Role, TriggerHit
from baton.policies import PolicyError, load_policy
from baton.settings import Settings
from baton.store.database import migrate_async
from baton.worker.connection import register_search_attributes
from baton.worker.wiring import build_worker

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
            # Position of the escalating message among the customer's messages, 1-based.
            record["messages_to_escalation"] = sum(
                1 for m in self.conv.messages[: self.at_message + 1] if m.role == "customer"
            )
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


@asynccontextmanager
async def replay_environment() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server with Baton's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server(), data_converter=pydantic_data_converter
    )
    async with env:
        await register_search_attributes(env.client)
        yield env


@asynccontextmanager
async def policy_worker(env: WorkflowEnvironment, policy_file: str | None, run_id: str) -> AsyncIterator[str]:
    """A worker running `policy_file` on a task queue of its own; yields the task queue.

    Keep it running until the test server stops: a closed conversation still
    leaves its queue after the replay has moved on, and work left without a
    worker would hold the server's clock for every later run.
    """
    # A replay never writes to the real store: its records go to a throwaway database.
    with tempfile.TemporaryDirectory(prefix="baton-replay-") as scratch:
        store_url = f"sqlite+aiosqlite:///{Path(scratch) / 'replay.db'}"
        await migrate_async(store_url)
        # Business hours are not replayed: the replay clock is not the conversation's clock, so every
        # escalation is judged as if people were on shift (after-hours handling has its own tests).
        policy = load_policy(policy_file or "default").model_copy(update={"hours": None})
        policy_path = Path(scratch) / "policy.yaml"
        policy_path.write_text(yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False))
        settings = Settings(task_queue=f"replay-{run_id}", policy=str(policy_path), database_url=store_url)
        # The transcript carries the customer's facts; no CRM is consulted.
        async with build_worker(env.client, settings, crm=EmbeddedCrm(customers={})):
            yield settings.task_queue


async def replay_policy(
    env: WorkflowEnvironment,
    task_queue: str,
    conversations: list[ReplayConversation],
    run_id: str,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Replay every conversation on the worker serving `task_queue` (see policy_worker), batch after batch.

    `run_id` prefixes the workflow ids, so several policies can run on one
    server without seeing each other's conversations. `on_batch` gets each
    batch's records as soon as they exist.
    """
    records: list[dict[str, Any]] = []
    for i in range(0, len(conversations), batch_size):
        batch = await replay_batch(env, task_queue, conversations[i : i + batch_size], run_id)
        if on_batch is not None:
            on_batch(batch)
        records.extend(batch)
    return records


def _writer(out: TextIO) -> Callable[[list[dict[str, Any]]], None]:
    def write(batch: list[dict[str, Any]]) -> None:
        for record in batch:
            out.write(json.dumps(record) + "\n")
        out.flush()

    return write


async def replay(
    conversations: list[ReplayConversation], policy_file: str | None, out: TextIO, batch_size: int = BATCH_SIZE
) -> list[dict[str, Any]]:
    """Replay under one policy, writing one JSON record per conversation to `out` as batches finish."""
    run_id = uuid.uuid4().hex[:8]
    async with replay_environment() as env, policy_worker(env, policy_file, run_id) as task_queue:
        return await replay_policy(env, task_queue, conversations, run_id, batch_size=batch_size, on_batch=_writer(out))


async def replay_both(
    conversations: list[ReplayConversation], policy_a: str, policy_b: str, batch_size: int = BATCH_SIZE
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Replay the same conversations under two policies, one after the other on one test server.

    Each policy has its own worker, task queue and workflow-id prefix. Customer
    dates are rebased onto the server's clock per batch, so both runs see each
    account as it was when the conversation happened.
    """
    run_id = uuid.uuid4().hex[:8]
    run_a, run_b = f"{run_id}-a", f"{run_id}-b"
    async with (
        replay_environment() as env,
        policy_worker(env, policy_a, run_a) as queue_a,
        policy_worker(env, policy_b, run_b) as queue_b,
    ):
        before = await replay_policy(env, queue_a, conversations, run_a, batch_size=batch_size)
        after = await replay_policy(env, queue_b, conversations, run_b, batch_size=batch_size)
    return before, after


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_count(value: float | None) -> str:
    """Counts, messages and seconds: no trailing zeros, at most one decimal."""
    return "-" if value is None else f"{round(value, 1):g}"


def _fmt_delta(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    rounded = round(value, digits)
    if rounded == 0:
        return "0"
    return f"{rounded:+.{digits}f}" if digits == 2 else f"{rounded:+g}"


def trigger_table(triggers: dict[str, dict[str, Any]]) -> list[str]:
    """Per-trigger precision, and recall when labels name expected triggers; one row per trigger."""
    if not triggers:
        return []
    with_recall = any(s["expected"] for s in triggers.values())
    width = max(len("trigger"), *(len(t) for t in triggers))
    header = f"  {'trigger':<{width}}  fired  necessary  precision"
    lines = [header + ("  expected  caught  recall" if with_recall else "")]
    for trigger, s in triggers.items():
        row = f"  {trigger:<{width}}  {s['fired']:>5}  {s['necessary']:>9}  {_fmt(s['precision']):>9}"
        if with_recall:
            row += f"  {s['expected']:>8}  {s['caught']:>6}  {_fmt(s['recall']):>6}"
        lines.append(row)
    return lines


def evaluation_lines(figures: dict[str, Any]) -> list[str]:
    """The labelled part of a summary: accuracy, per trigger, urgency, time to escalation."""
    if not figures["labelled"]:
        return []
    c = figures["confusion"]
    lines = [
        f"against labels ({figures['labelled']}): precision {figures['precision']:.2f}, "
        f"recall {figures['recall']:.2f}, F1 {figures['f1']:.2f} "
        f"(tp {c['tp']}, fp {c['fp']}, fn {c['fn']}, tn {c['tn']})"
    ]
    urgency = figures["urgency"]
    if urgency["total"]:
        lines.append(
            f"urgency accuracy: {urgency['correct']}/{urgency['total']} true positives ({urgency['accuracy']:.2f})"
        )
    timing = figures["time_to_escalation"]
    if timing["count"]:
        m, s = timing["messages"], timing["seconds"]
        lines.append(
            f"time to escalation ({timing['count']} true positives): "
            f"median {_fmt_count(m['median'])} messages / {_fmt_count(s['median'])}s, "
            f"p90 {_fmt_count(m['p90'])} messages / {_fmt_count(s['p90'])}s"
        )
    if figures["triggers"]:
        lines.append("per trigger (labelled conversations; necessary = labelled as needing a human):")
        lines.extend(trigger_table(figures["triggers"]))
    return lines


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
    lines.extend(evaluation_lines(evaluation.metrics(records)))
    return "\n".join(lines)


def summarize_comparison(comparison: dict[str, Any], names: tuple[str, str], elapsed: float, max_f1_drop: float) -> str:
    before, after, delta = comparison["before"], comparison["after"], comparison["delta"]
    changed = comparison["changed"]
    lines = [
        f"replayed {before['conversations']} conversations under 2 policies in {elapsed:.1f}s",
        f"A: {names[0]}",
        f"B: {names[1]}",
    ]
    kinds = Counter(code for entry in changed for code in entry["change"])
    lines.append(
        f"changed: {len(changed)} conversations"
        + (" (" + ", ".join(f"{k} {v}" for k, v in kinds.most_common()) + ")" if kinds else "")
    )
    for entry in changed:
        outcome = f" [{entry['outcome']}]" if "outcome" in entry else ""
        lines.append(f"  {entry['conversation_id']}: {', '.join(entry['change'])}{outcome}")
    rows = [
        ("escalated", "escalated", _fmt_count, 1),
        ("precision", "precision", _fmt, 2),
        ("recall", "recall", _fmt, 2),
        ("F1", "f1", _fmt, 2),
        ("urgency accuracy", "urgency_accuracy", _fmt, 2),
        ("median messages", "median_messages", _fmt_count, 1),
        ("p90 messages", "p90_messages", _fmt_count, 1),
        ("median seconds", "median_seconds", _fmt_count, 1),
        ("p90 seconds", "p90_seconds", _fmt_count, 1),
        ("tp / fp / fn / tn", None, None, 0),
    ]
    lines.append(f"  {'metric':<18} {'A':>8} {'B':>8} {'delta':>8}")
    for label, key, fmt, digits in rows:
        if key is None:
            a = "/".join(str(before["confusion"][k]) for k in ("tp", "fp", "fn", "tn"))
            b = "/".join(str(after["confusion"][k]) for k in ("tp", "fp", "fn", "tn"))
            lines.append(f"  {label:<18} {a:>8} {b:>8}")
            continue
        a_value, b_value = evaluation.figure(before, key), evaluation.figure(after, key)
        lines.append(f"  {label:<18} {fmt(a_value):>8} {fmt(b_value):>8} {_fmt_delta(delta[key], digits):>8}")
    lines.append("  (times to escalation are over each policy's own true positives)")
    trigger_ids = sorted(set(before["triggers"]) | set(after["triggers"]))
    if trigger_ids and before["labelled"]:
        width = max(len("trigger"), *(len(t) for t in trigger_ids))
        lines.append("per-trigger precision (fired):")
        lines.append(f"  {'trigger':<{width}} {'A':>11} {'B':>11} {'delta':>8}")
        for trigger in trigger_ids:
            a, b = before["triggers"].get(trigger), after["triggers"].get(trigger)
            cell_a = f"{_fmt(a['precision'])} ({a['fired']})" if a and a["fired"] else "-"
            cell_b = f"{_fmt(b['precision'])} ({b['fired']})" if b and b["fired"] else "-"
            lines.append(
                f"  {trigger:<{width}} {cell_a:>11} {cell_b:>11} {_fmt_delta(delta[f'precision[{trigger}]']):>8}"
            )
    if not before["labelled"]:
        lines.append("no labelled conversations: the F1 gate does not apply")
    else:
        drop = evaluation.f1_drop(comparison)
        verdict = "FAIL" if evaluation.exceeds_f1_drop(comparison, max_f1_drop) else "ok"
        if round(drop, 3) == 0:
            movement = "F1 unchanged"
        else:
            movement = f"F1 dropped by {drop:.3f}" if drop > 0 else f"F1 rose by {-drop:.3f}"
        lines.append(f"{movement} from A to B (allowed drop {max_f1_drop:g}): {verdict}")
    return "\n".join(lines)


def _load_policies(paths: list[str]) -> list[str] | None:
    """Each policy's display name, or None after printing why one cannot be used."""
    names = []
    for path in paths:
        try:
            policy = load_policy(path)
        except PolicyError as err:
            print(err, file=sys.stderr)
            return None
        names.append(f"{path} (policy '{policy.name}')")
    return names


def _writable(target: str) -> str | None:
    """Why `target` cannot be written, or None; checked before a long replay rather than after."""
    path = Path(target)
    if path.is_dir():
        return f"{target}: cannot write: is a directory"
    if not path.parent.is_dir():
        return f"{target}: cannot write: no such directory {path.parent}"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{target}: cannot write: permission denied"
    return None


def _write_summary(target: str, figures: dict[str, Any]) -> int:
    try:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        print(f"{target}: cannot write: {err.strerror or err}", file=sys.stderr)
        return 2
    return 0


def run_replay_command(args: argparse.Namespace) -> int:
    compare: list[str] | None = getattr(args, "compare", None)
    max_f1_drop: float | None = getattr(args, "max_f1_drop", None)
    summary_json: str | None = getattr(args, "summary_json", None)
    if compare and args.policy:
        print("replay: --compare and --policy cannot be used together", file=sys.stderr)
        return 2
    if max_f1_drop is not None and not compare:
        print("replay: --max-f1-drop applies only with --compare", file=sys.stderr)
        return 2
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
    names = _load_policies(list(compare) if compare else [args.policy] if args.policy else [])
    if names is None:
        return 2
    for target in (args.output, summary_json):
        problem = _writable(target) if target else None
        if problem:
            print(problem, file=sys.stderr)
            return 2
    began = time.monotonic()
    with ExitStack() as stack:
        out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
        if compare:
            return _compare(conversations, compare, names, out, began, max_f1_drop, summary_json, str(path))
        records = asyncio.run(replay(conversations, args.policy, out))
    print(summarize(records, time.monotonic() - began), file=sys.stderr)
    if summary_json:
        return _write_summary(
            summary_json, {"file": str(path), "policy": args.policy or "default", **evaluation.metrics(records)}
        )
    return 0


def _compare(
    conversations: list[ReplayConversation],
    policies: list[str],
    names: list[str],
    out: TextIO,
    began: float,
    max_f1_drop: float | None,
    summary_json: str | None,
    source: str,
) -> int:
    """`--compare A B`: changed conversations on `out`, the comparison on stderr; 1 when F1 fell too far."""
    allowed = evaluation.DEFAULT_MAX_F1_DROP if max_f1_drop is None else max_f1_drop
    before, after = asyncio.run(replay_both(conversations, policies[0], policies[1]))
    comparison = evaluation.compare_records(before, after)
    for entry in comparison["changed"]:
        out.write(json.dumps(entry) + "\n")
    out.flush()
    print(summarize_comparison(comparison, (names[0], names[1]), time.monotonic() - began, allowed), file=sys.stderr)
    failed = bool(comparison["before"]["labelled"]) and evaluation.exceeds_f1_drop(comparison, allowed)
    if summary_json:
        figures = {
            "file": source,
            "policy_a": policies[0],
            "policy_b": policies[1],
            "changed": len(comparison["changed"]),
            "f1_drop": evaluation.f1_drop(comparison),
            "max_f1_drop": allowed,
            "passed": not failed,
            "a": comparison["before"],
            "b": comparison["after"],
            "delta": comparison["delta"],
        }
        if _write_summary(summary_json, figures):
            return 2
    return 1 if failed else 0
