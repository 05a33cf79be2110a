"""How Baton's cost grows: open conversations, conversation length, workers, and the gateway.

Starts the stack as processes on loopback (bench/stack.py: a Temporal dev server, Baton workers and a
gateway, each its own process, so a worker's RSS is the worker's alone) and measures:

1. **Idle conversations** (`idle`): N conversations opened with one customer message each, left open, then the
   worker's RSS (VmRSS) and the p50 and worker CPU of a next message to a conversation used a moment ago (in
   the worker's sticky cache) and to one of the oldest (evicted: the worker replays its history first).
2. **One long conversation** (`long`): K customer messages one after another; p50 of the first and of the last
   500, the runs continue-as-new made, the largest history of a run and the state each run carried; where it
   stops, if it does.
3. **Workers** (`workers`): throughput of 50 conversations at once with one worker and with two on the task
   queue, and the CPU the workers and the server spent per message.
4. **Gateway** (`gateway`): p50 of a message through the gateway's HTTP API against a direct client call, and
   the gateway's CPU per message.
5. **Actions** (`actions`): history events and Temporal Cloud actions of a bot-only and of an escalated
   conversation, over every workflow they reach.
6. **Codec** (`codec`): the payload codec's time for a message and for the state a long conversation carries.

Every latency is measured in at least two rounds, alternated with what it is compared with (ABBA).
The policy is the default one with the count triggers out of reach (so a 5,000-message conversation
stays with the bot, while every trigger is still evaluated) and no idle close (so open conversations
stay open whatever the run's length). Figures and what they mean: bench/README.md, "How cost grows".

    .venv/bin/python -m bench.growth [--idle 1000,10000,50000] [--long 5000] [--parts idle,long,...]
                                     [--json FILE] [--chart FILE.png] [--from-json FILE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import temporalio
import yaml
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from baton.apps import client as baton_client
from baton.apps.binaries import temporal_cli
from baton.classifier.scorer import Scorer, scorer_for
from baton.contract.messages import MessageIn, PickupRequest, ResolveRequest
from baton.policies.loader import load_policy
from baton.settings import Settings
from baton.store.database import migrate_async
from baton.worker.codec import EncryptionCodec, generate_key
from baton.worker.connection import connect, search_attribute_flags
from baton.worker.wiring import build_worker
from bench.run import CUSTOMER_ID, RENEWAL_IN, message_for, percentile, start_for
from bench.stack import POLICY_SOURCE, Stack, _wait_port, always_open_policy, load_average

COUNT_TRIGGER_KINDS = ("repeated_question", "bot_repeating", "unresolved_turns")
OUT_OF_REACH = 1_000_000
# Conversations being opened at once in the idle part: enough to keep the worker busy, few enough that a
# workflow task does not wait in the worker past its 10 s timeout on a loaded machine.
START_PARALLELISM = 16
ATTEMPTS = 10
SAMPLES_PER_ROUND = 40  # messages per kind (recent, evicted) per round, one at a time
ROUNDS = 2  # of every latency comparison, alternated ABBA
SETTLE_SECONDS = 5.0  # after opening conversations, for their background records to finish
UPDATE_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
HISTORY_LIMIT = 4096  # events: where the server suggests continue-as-new (its default)
WINDOW = 500  # messages at each end of the long conversation
LONG_MESSAGE_TIMEOUT = 60.0  # seconds; a message unanswered by then ends the long conversation's measurement
WORKER_CONVERSATIONS = 50
WORKER_MESSAGES = 10
GATEWAY_LEVELS = (1, 10)
GATEWAY_MESSAGES = 10


def growth_policy(folder: Path) -> Path:
    """The default policy, every count trigger's threshold out of reach and no idle close."""
    data = yaml.safe_load(POLICY_SOURCE.read_text())
    data["name"] = "growth"
    for trigger in data["triggers"]:
        if trigger["when"]["kind"] in COUNT_TRIGGER_KINDS:
            trigger["when"]["threshold"] = OUT_OF_REACH
    data["idle_close"] = {"default": None, "channels": {}}
    path = folder / "growth.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_policy(str(path))  # fails here, not in the worker, if the schema moved on
    return path


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def max_cached_workflows() -> int:
    """The sticky cache size the worker runs with: build_worker's, else the SDK's default."""
    configured = inspect.signature(build_worker).parameters["max_cached_workflows"].default
    if configured is not None:
        return int(configured)
    return int(inspect.signature(Worker.__init__).parameters["max_cached_workflows"].default)


@dataclass
class GrowthStack(Stack):
    """bench/stack.py's stack with the growth policy and an in-memory dev server (nothing here restarts it)."""

    policy: Path | None = None

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.policy is not None:
            env["BATON_POLICY"] = str(self.policy)
        return env

    def start_temporal(self) -> None:
        self._spawn(
            "temporal",
            [
                temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.temporal_port),
                "--headless", "--log-level", "error", *search_attribute_flags(),
            ],
        )  # fmt: skip
        _wait_port(self.temporal_port, 60)

    def pid(self, name: str) -> int:
        return self._procs[name].pid

    def stop_process(self, name: str) -> None:
        """SIGTERM (the worker drains) and wait for it to exit."""
        proc = self._procs.pop(name)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Driver:
    """Sends customer messages straight to Temporal, as the gateway does, and keeps each conversation's count."""

    client: Client
    task_queue: str
    scorer: Scorer
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    sent: dict[str, int] = field(default_factory=dict)

    def new_id(self, kind: str, index: int) -> str:
        return f"growth-{self.tag}-{kind}-{index}"

    def next_message(self, conversation_id: str) -> MessageIn:
        index = self.sent.get(conversation_id, 0)
        self.sent[conversation_id] = index + 1
        return message_for(conversation_id, index, zlib.crc32(conversation_id.encode()))

    async def send(self, conversation_id: str) -> float:
        """One customer message, answered; returns the seconds it took."""
        message = self.next_message(conversation_id)
        began = time.perf_counter()
        decision = await baton_client.send_message(
            self.client, self.task_queue, start_for(conversation_id), message, scorer=self.scorer
        )
        took = time.perf_counter() - began
        if decision.action != "continue":
            raise RuntimeError(f"{conversation_id}: {decision.action}; the growth policy should keep it with the bot")
        return took


async def bounded(items: list[str], parallelism: int, job: Callable[[str], Awaitable[Any]]) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def runner() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            # An overloaded worker can miss a workflow task's timeout (10 s); the server then refuses updates
            # until the retried task completes, which may take a while again.
            for attempt in range(ATTEMPTS):
                try:
                    await job(item)
                    break
                except Exception:
                    if attempt == ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(2 + 2 * attempt)

    await asyncio.gather(*(runner() for _ in range(parallelism)))


def ms(values: list[float]) -> float:
    return round(percentile(values, 50) * 1000, 2)


# ---------------------------------------------------------------------------
# 1. Idle conversations


async def idle_part(stack: GrowthStack, driver: Driver, levels: list[int]) -> list[dict]:
    opened: list[str] = []
    old_used = 0  # each level's "oldest" sample is conversations no earlier level sent a second message to
    rows = []
    base_rss = rss_kib(stack.pid("worker"))
    print(f"worker RSS before any conversation: {base_rss / 1024:.0f} MiB", flush=True)
    for level in levels:
        new = [driver.new_id("idle", i) for i in range(len(opened), level)]
        print(f"opening {len(new)} conversations (to {level}) ...", flush=True)
        began = time.perf_counter()
        await bounded(new, START_PARALLELISM, driver.send)
        opening = time.perf_counter() - began
        opened.extend(new)
        await asyncio.sleep(SETTLE_SECONDS)
        rss_open = rss_kib(stack.pid("worker"))
        # Recent: the last opened, in the cache. Evicted: the oldest, never touched since their first message
        # (at a level within the cache's size they may still be cached: the table says so).
        recent_pool = opened[-SAMPLES_PER_ROUND * ROUNDS :]
        old_pool = opened[old_used : old_used + SAMPLES_PER_ROUND * ROUNDS]
        old_used += len(old_pool)
        samples: dict[str, list[list[float]]] = {"recent": [], "evicted": []}
        cpu = {"recent": 0.0, "evicted": 0.0}  # the worker's, while each message was answered
        for r in range(ROUNDS):
            got: dict[str, list[float]] = {"recent": [], "evicted": []}
            recent = recent_pool[r * SAMPLES_PER_ROUND : (r + 1) * SAMPLES_PER_ROUND]
            old = old_pool[r * SAMPLES_PER_ROUND : (r + 1) * SAMPLES_PER_ROUND]
            for i in range(SAMPLES_PER_ROUND):
                order = (("recent", recent[i]), ("evicted", old[i]))
                for kind, cid in order if i % 2 == 0 else reversed(order):
                    cpu_before = cpu_seconds(stack.pid("worker"))
                    got[kind].append(await driver.send(cid))
                    cpu[kind] += cpu_seconds(stack.pid("worker")) - cpu_before
            for kind in got:
                samples[kind].append(got[kind])
        row = {
            "open_conversations": level,
            "opened_per_second": round(len(new) / opening, 1),
            "worker_rss_mib": round(rss_open / 1024, 1),
            "worker_rss_after_samples_mib": round(rss_kib(stack.pid("worker")) / 1024, 1),
            "server_rss_mib": round(rss_kib(stack.pid("temporal")) / 1024, 1),
            "recent_p50_ms": [ms(s) for s in samples["recent"]],
            "evicted_p50_ms": [ms(s) for s in samples["evicted"]],
            "recent_worker_cpu_ms": round(cpu["recent"] / (SAMPLES_PER_ROUND * ROUNDS) * 1000, 1),
            "evicted_worker_cpu_ms": round(cpu["evicted"] / (SAMPLES_PER_ROUND * ROUNDS) * 1000, 1),
            "load_average": load_average(),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# ---------------------------------------------------------------------------
# 2. One long conversation


async def run_histories(client: Client, workflow_id: str) -> list[dict]:
    """Every run of the workflow, oldest first, following continue-as-new back from the latest."""
    runs = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        started = events[0].workflow_execution_started_event_attributes
        payloads = started.input.payloads
        runs.append(
            {
                "events": len(events),
                "updates": sum(e.event_type == UPDATE_COMPLETED for e in events),
                "input_bytes": sum(len(p.data) for p in payloads),
                "types": Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events),
            }
        )
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return list(reversed(runs))


async def long_part(driver: Driver, messages: int, rounds: int) -> list[dict]:
    rows = []
    for r in range(rounds):
        cid = driver.new_id("long", r)
        print(f"long conversation {r + 1}/{rounds}: {messages} messages ...", flush=True)
        latencies: list[float] = []
        stopped = None
        began = time.perf_counter()
        for i in range(messages):
            try:
                latencies.append(await asyncio.wait_for(driver.send(cid), LONG_MESSAGE_TIMEOUT))
            except Exception as err:  # the conversation cannot take more: say where and why, and measure what was
                description = await baton_client.handle(driver.client, cid).describe()
                stopped = {
                    "at_message": i + 1,
                    "error": f"{type(err).__name__}: {err}"[:300],
                    "workflow_status": description.status.name if description.status else None,
                }
                print(f"  stopped: {json.dumps(stopped)}", flush=True)
                break
            if (i + 1) % 500 == 0:
                print(f"  {i + 1} messages, last 100 p50 {ms(latencies[-100:])} ms", flush=True)
        took = time.perf_counter() - began
        runs = await run_histories(driver.client, baton_client.workflow_id(cid))
        sent = len(latencies)
        continued = runs[1:]  # a run started by continue-as-new carries the state so far
        row = {
            "messages": messages,
            "answered": sent,
            "stopped": stopped,
            "seconds": round(took, 1),
            "first_p50_ms": ms(latencies[:WINDOW]),
            "last_p50_ms": ms(latencies[-WINDOW:]),
            "p50_by_500_ms": [ms(latencies[i : i + WINDOW]) for i in range(0, sent, WINDOW)],
            "runs": len(runs),
            "max_events_per_run": max(run["events"] for run in runs),
            "events_per_run": [run["events"] for run in runs],
            "updates_per_run": [run["updates"] for run in runs],
            "carried_input_kib": [round(run["input_bytes"] / 1024, 1) for run in runs],
            "carried_bytes_per_message": round(
                continued[-1]["input_bytes"] / sum(run["updates"] for run in runs[:-1]) if continued else math.nan, 1
            ),
            "events_per_message": round(sum(run["events"] for run in runs) / max(sent, 1), 2),
            "event_types": dict(sum((run["types"] for run in runs), Counter()).most_common()),
            "load_average": load_average(),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# ---------------------------------------------------------------------------
# 3. One worker against two


async def wait_polling(client: Client, task_queue: str, pid: int, timeout: float = 90) -> None:
    """Until the worker process `pid` polls the task queue (a client's default identity is pid@host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue))
        )
        if any(p.identity.startswith(f"{pid}@") for p in response.pollers):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{task_queue}: worker {pid} not polling after {timeout}s")


async def throughput_round(stack: GrowthStack, driver: Driver, kind: str, index: int) -> dict:
    """50 new conversations of 10 messages at once; the CPU the workers and the server spent per message."""
    ids = [driver.new_id(kind, index * 1000 + j) for j in range(WORKER_CONVERSATIONS)]
    latencies: list[float] = []
    workers = [name for name in stack._procs if name.startswith("worker")]

    async def converse(cid: str) -> None:
        for _ in range(WORKER_MESSAGES):
            latencies.append(await driver.send(cid))

    cpu_before = {name: cpu_seconds(stack.pid(name)) for name in [*workers, "temporal"]}
    began = time.perf_counter()
    await asyncio.gather(*(converse(cid) for cid in ids))
    wall = time.perf_counter() - began
    cpu = {name: cpu_seconds(stack.pid(name)) - before for name, before in cpu_before.items()}
    n = len(latencies)
    return {
        "messages_per_s": round(n / wall, 1),
        "p50_ms": ms(latencies),
        "worker_cpu_ms_per_message": round(sum(cpu[w] for w in workers) / n * 1000, 2),
        "server_cpu_ms_per_message": round(cpu["temporal"] / n * 1000, 2),
    }


async def workers_part(stack: GrowthStack, driver: Driver, rounds: int) -> dict:
    result: dict[str, list[dict]] = {"1": [], "2": []}
    await throughput_round(stack, driver, "warm", 0)
    order = ["1", "2", "2", "1"] * ((rounds + 1) // 2)
    for index, workers in enumerate(order):
        running = "worker2" in stack._procs
        if workers == "2" and not running:
            stack.start_worker("worker2")
            await wait_polling(driver.client, driver.task_queue, stack.pid("worker2"))
        elif workers == "1" and running:
            stack.stop_process("worker2")
        row = await throughput_round(stack, driver, f"w{workers}", index)
        row["load_average"] = load_average()
        result[workers].append(row)
        print(f"{workers} worker(s): {json.dumps(row)}", flush=True)
    if "worker2" in stack._procs:
        stack.stop_process("worker2")
    ratios = [b["messages_per_s"] / a["messages_per_s"] for a, b in zip(result["1"], result["2"], strict=True)]
    return {**result, "throughput_ratio": [round(x, 2) for x in ratios]}


# ---------------------------------------------------------------------------
# 4. The gateway against a direct call


async def converse(send: Callable[[str], Awaitable[float]], conversation_id: str, into: list[float]) -> None:
    for _ in range(GATEWAY_MESSAGES):
        into.append(await send(conversation_id))


async def gateway_part(stack: GrowthStack, driver: Driver, rounds: int) -> list[dict]:
    renewal = (date.today() + RENEWAL_IN).isoformat()
    limits = httpx.Limits(max_connections=max(GATEWAY_LEVELS) + 5)
    rows = []
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as http:

        async def through_gateway(cid: str) -> float:
            message = driver.next_message(cid)
            body = {
                "customer_id": CUSTOMER_ID,
                "channel": "chat",
                "customer": {"renewal_date": renewal},
                "message": {"message_id": message.message_id, "role": "customer", "text": message.text},
            }
            began = time.perf_counter()
            response = await http.post(f"/v1/conversations/{cid}/messages", json=body)
            took = time.perf_counter() - began
            response.raise_for_status()
            if response.json()["action"] != "continue":
                raise RuntimeError(f"{cid}: {response.json()['action']} through the gateway")
            return took

        senders: dict[str, Callable[[str], Awaitable[float]]] = {"gateway": through_gateway, "direct": driver.send}
        await asyncio.gather(*(senders[k](driver.new_id(f"gw-warm-{k}", j)) for k in senders for j in range(5)))
        for level in GATEWAY_LEVELS:
            samples: dict[str, list[list[float]]] = {"gateway": [], "direct": []}
            gateway_cpu = []
            for r in range(rounds * 2):
                kind = ("gateway", "direct", "direct", "gateway")[r % 4]
                got: list[float] = []
                ids = [driver.new_id(f"gw{level}-{kind}-{r}", j) for j in range(level)]
                cpu_before = cpu_seconds(stack.pid("gateway"))
                await asyncio.gather(*(converse(senders[kind], cid, got) for cid in ids))
                if kind == "gateway":
                    gateway_cpu.append(round((cpu_seconds(stack.pid("gateway")) - cpu_before) / len(got) * 1000, 2))
                samples[kind].append(got)
            row = {
                "conversations": level,
                "gateway_p50_ms": [ms(s) for s in samples["gateway"]],
                "direct_p50_ms": [ms(s) for s in samples["direct"]],
                "gateway_cpu_ms_per_message": gateway_cpu,
                "load_average": load_average(),
            }
            pairs = zip(row["gateway_p50_ms"], row["direct_p50_ms"], strict=True)
            row["overhead_ms"] = [round(g - d, 2) for g, d in pairs]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


# ---------------------------------------------------------------------------
# 5. History events and Temporal Cloud actions per conversation

# History events that Temporal Cloud bills as an action (docs.temporal.io/cloud/actions): a start (client,
# continue-as-new), an accepted update, a received signal, a scheduled activity, a started timer, a search
# attribute or memo upsert, and the local activities of one workflow task (counted here once per marker, an upper
# bound). Queries, which leave no event, and activity retries are not counted.
ACTION_EVENTS = {
    "WORKFLOW_EXECUTION_STARTED",
    "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    "WORKFLOW_EXECUTION_SIGNALED",
    "ACTIVITY_TASK_SCHEDULED",
    "TIMER_STARTED",
    "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
    "WORKFLOW_PROPERTIES_MODIFIED",
}
LOCAL_ACTIVITY_MARKER = "core_local_activity"
ACTION_CONVERSATIONS = 5
BOT_MESSAGES = 10
QUESTION = "How do I export my invoices as a CSV file?"
PERSON = "This is not helping at all. I want to talk to a human agent now."


async def count_task_queue(client: Client, task_queue: str) -> tuple[Counter[str], int]:
    """Event types over every run of every workflow on the task queue, and the actions among them."""
    types: Counter[str] = Counter()
    actions = 0
    async for execution in client.list_workflows(f'TaskQueue = "{task_queue}"'):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            types[name] += 1
            if name in ACTION_EVENTS or (
                name == "MARKER_RECORDED"
                and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
            ):
                actions += 1
    return types, actions


async def bot_conversation(client: Client, driver: Driver, conversation_id: str) -> None:
    for _ in range(BOT_MESSAGES):
        await driver.send(conversation_id)
    await baton_client.close(client, conversation_id)
    await baton_client.handle(client, conversation_id).result()


async def escalated_conversation(client: Client, driver: Driver, conversation_id: str) -> None:
    start = start_for(conversation_id)
    for index, text in enumerate((QUESTION, PERSON)):
        message = MessageIn(message_id=f"m{index}", role="customer", text=text)
        decision = await baton_client.send_message(client, driver.task_queue, start, message, scorer=driver.scorer)
    if decision.action != "escalate":
        raise RuntimeError(f"{conversation_id}: {decision.action} on a request for a person")
    agent = "agent-1"
    await baton_client.pickup(client, conversation_id, PickupRequest(agent_id=agent))
    reply = MessageIn(message_id="a1", role="agent", agent_id=agent, text="Hi, I'm here. Let me look at your export.")
    await baton_client.add_message(client, conversation_id, reply)
    await baton_client.resolve(client, conversation_id, ResolveRequest(agent_id=agent, necessary=True, csat=5))
    await baton_client.close(client, conversation_id)
    await baton_client.handle(client, conversation_id).result()


async def actions_part(client: Client, folder: Path, conversations: int = ACTION_CONVERSATIONS) -> dict:
    """Each kind of conversation on a task queue of its own, with an in-process worker, counted whole: the
    conversations' histories and those of the queue, customer and operations workflows they used."""
    settings = Settings(
        policy=str(always_open_policy(folder)), database_url=f"sqlite+aiosqlite:///{folder / 'actions.db'}"
    )
    await migrate_async(settings.database_url)
    result = {}
    kinds = {
        "bot_only": (bot_conversation, BOT_MESSAGES, 0),
        "escalated": (escalated_conversation, 2, 1),
    }
    for kind, (converse_once, customer_messages, agent_messages) in kinds.items():
        queue = f"actions-{kind}-{uuid.uuid4().hex[:6]}"
        driver = Driver(client, queue, scorer_for(settings))
        async with build_worker(client, settings.model_copy(update={"task_queue": queue})):
            for j in range(conversations):
                await converse_once(client, driver, driver.new_id(kind, j))
        await asyncio.sleep(2)  # visibility is eventually consistent
        types, actions = await count_task_queue(client, queue)
        n = conversations
        result[kind] = {
            "conversations": n,
            "customer_messages": customer_messages,
            "agent_messages": agent_messages,
            "events_per_conversation": round(sum(types.values()) / n, 1),
            "actions_per_conversation": round(actions / n, 1),
            "event_types_per_conversation": {k: round(v / n, 1) for k, v in types.most_common()},
        }
        print(f"{kind}: {json.dumps(result[kind])}", flush=True)
    return result


# ---------------------------------------------------------------------------
# 6. The payload codec


def codec_part(carried_kib: float) -> list[dict]:
    """Encrypt and decrypt with Baton's payload codec (BATON_CODEC_KEYS): a customer message as the update carries
    it, and a continue-as-new input the size the long conversation carried. Each crosses the codec once each way per
    hop (client, worker); a replay decodes every payload of the history again."""
    codec = EncryptionCodec([generate_key("bench")])
    message = message_for("growth-codec", 0, 0)
    samples = {
        "customer message": pydantic_data_converter.payload_converter.to_payloads([message])[0],
        f"carried state ({carried_kib:.0f} KiB)": Payload(
            metadata={"encoding": b"json/plain"}, data=b"x" * int(carried_kib * 1024)
        ),
    }
    rows = []
    for label, payload in samples.items():
        times = []
        for _ in range(ROUNDS):
            repeat = 2000 if len(payload.data) < 64 * 1024 else 50
            began = time.perf_counter()
            for _ in range(repeat):
                codec.decrypt(codec.encrypt(payload))
            times.append((time.perf_counter() - began) / repeat * 1e6)
        rows.append({"payload": label, "bytes": len(payload.data), "encrypt_decrypt_us": [round(t, 1) for t in times]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------------------
# Chart


def _ranged(ax: Any, x: list[Any], values: list[list[float]], style: str, label: str) -> None:
    """Points at the middle of each range of rounds, with the range as the error bar."""
    lows, highs = [min(v) for v in values], [max(v) for v in values]
    mids = [(lo + hi) / 2 for lo, hi in zip(lows, highs, strict=True)]
    spread = [[m - lo for m, lo in zip(mids, lows, strict=True)], [hi - m for m, hi in zip(mids, highs, strict=True)]]
    ax.errorbar(x, mids, yerr=spread, fmt=style, capsize=4, label=label)


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    fig.suptitle(
        f"How Baton's cost grows ({result['meta']['cpus']} shared CPUs, stack on loopback; bars: range of rounds)"
    )
    idle = result.get("idle") or []
    if idle:
        x = [row["open_conversations"] for row in idle]
        ax = axes[0][0]
        ax.plot(x, [row["worker_rss_mib"] for row in idle], "o-", label="worker")
        ax.plot(x, [row["server_rss_mib"] for row in idle], "s--", label="dev server (in memory)")
        ax.axvline(
            result["meta"]["max_cached_workflows"], color="grey", linestyle=":", label="worker's sticky cache size"
        )
        ax.set_xscale("log")
        ax.set_xlabel("open idle conversations")
        ax.set_ylabel("RSS (MiB)")
        ax.set_ylim(bottom=0)
        ax.set_title("Memory")
        ax.legend()
        ax = axes[0][1]
        _ranged(ax, x, [row["recent_p50_ms"] for row in idle], "o-", "recently used (cached)")
        _ranged(ax, x, [row["evicted_p50_ms"] for row in idle], "s-", "oldest (evicted, replayed)")
        ax.set_xscale("log")
        ax.set_xlabel("open idle conversations")
        ax.set_ylabel("next message p50 (ms)")
        ax.set_title("Next message to an open conversation")
        ax.set_ylim(bottom=0)
        ax.legend()
        if all("recent_worker_cpu_ms" in row for row in idle):
            ax = axes[0][2]
            ax.plot(x, [row["recent_worker_cpu_ms"] for row in idle], "o-", label="recently used (cached)")
            ax.plot(x, [row["evicted_worker_cpu_ms"] for row in idle], "s-", label="oldest (evicted, replayed)")
            ax.set_xscale("log")
            ax.set_xlabel("open idle conversations")
            ax.set_ylabel("worker CPU per message (ms)")
            ax.set_title("Worker CPU of that next message")
            ax.set_ylim(bottom=0)
            ax.legend()
    long = result.get("long") or []
    if long:
        ax = axes[1][0]
        for i, row in enumerate(long):
            xs = [WINDOW * (j + 0.5) for j in range(len(row["p50_by_500_ms"]))]
            label = f"conversation {i + 1}: {row['runs']} runs, at most {row['max_events_per_run']} events"
            ax.plot(xs, row["p50_by_500_ms"], "o-", label=label)
        ax.set_xlabel("customer message")
        ax.set_ylabel(f"p50 of each {WINDOW} messages (ms)")
        stops = [row["stopped"]["at_message"] for row in long if row.get("stopped")]
        title = f"A {long[0]['messages']}-message conversation"
        ax.set_title(f"{title}: stuck at message {min(stops)}" if stops else title)
        ax.set_ylim(bottom=0)
        ax.legend()
    workers = result.get("workers")
    if workers:
        ax = axes[1][1]
        rates = [[row["messages_per_s"] for row in workers[n]] for n in ("1", "2")]
        bars = ax.bar(
            ["1 worker", "2 workers"],
            [sum(r) / len(r) for r in rates],
            yerr=[[sum(r) / len(r) - min(r) for r in rates], [max(r) - sum(r) / len(r) for r in rates]],
            capsize=4,
        )
        ax.bar_label(bars, fmt="%.0f", label_type="center")
        ax.set_ylabel("messages / s")
        ax.set_title(f"{WORKER_CONVERSATIONS} conversations at once, one task queue")
    gateway = result.get("gateway")
    if gateway:
        ax = axes[1][2]
        levels = [f"{row['conversations']} at once" for row in gateway]
        width = 0.38
        for offset, kind in ((-width / 2, "direct"), (width / 2, "gateway")):
            values = [row[f"{kind}_p50_ms"] for row in gateway]
            means = [sum(v) / len(v) for v in values]
            spread = [
                [m - min(v) for m, v in zip(means, values, strict=True)],
                [max(v) - m for m, v in zip(means, values, strict=True)],
            ]
            positions = [i + offset for i in range(len(levels))]
            bars = ax.bar(
                positions,
                means,
                width,
                yerr=spread,
                capsize=4,
                label=f"{kind} client call" if kind == "direct" else "through the gateway",
            )
            ax.bar_label(bars, fmt="%.1f", label_type="center")
        ax.set_xticks(range(len(levels)), levels)
        ax.set_ylabel("message p50 (ms)")
        ax.set_title("Gateway (HTTP on loopback) against a direct call")
        ax.legend()
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", default="1000,10000,50000", help="open conversation levels, ascending ('' skips)")
    parser.add_argument("--long", type=int, default=5000, help="messages in the long conversation (0 skips)")
    parser.add_argument("--parts", default="idle,long,workers,gateway,actions,codec", help="which measurements to run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of each comparison (>= 2 for a range)")
    parser.add_argument("--json", type=Path, help="also write the results to this file as JSON")
    parser.add_argument("--chart", type=Path, help="draw the results into this PNG")
    parser.add_argument("--folder", type=Path, help="where logs and databases go (default: a new temp folder)")
    parser.add_argument(
        "--from-json", type=Path, nargs="+", metavar="FILE", help="draw --chart from earlier runs' --json, run nothing"
    )
    args = parser.parse_args(argv)
    args.levels = sorted(int(x) for x in args.idle.split(",") if x.strip())
    args.part_set = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.levels and min(args.levels) < SAMPLES_PER_ROUND * ROUNDS:
        parser.error(f"idle levels need at least {SAMPLES_PER_ROUND * ROUNDS} conversations")
    return args


async def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.from_json:
        merged: dict[str, Any] = {}
        for path in args.from_json:
            for key, value in json.loads(path.read_text()).items():
                merged.setdefault(key, value)
        if args.chart:
            chart(merged, args.chart)
            print(f"Wrote {args.chart}")
        return merged
    folder = args.folder or Path(tempfile.mkdtemp(prefix="baton-growth-"))
    folder.mkdir(parents=True, exist_ok=True)
    stack = GrowthStack(folder, policy=growth_policy(folder), task_queue=f"growth-{uuid.uuid4().hex[:6]}")
    result: dict[str, Any] = {}
    print(f"Stack in {folder} (load average {load_average()})", flush=True)
    stack.start_temporal()
    try:
        stack.start_worker()
        if "gateway" in args.part_set:
            stack.start_gateway()
        settings = Settings(temporal_address=f"127.0.0.1:{stack.temporal_port}", task_queue=stack.task_queue)
        client = await connect(settings)
        server = (await client.workflow_service.get_system_info(GetSystemInfoRequest())).server_version or "?"
        await wait_polling(client, stack.task_queue, stack.pid("worker"))
        driver = Driver(client, stack.task_queue, scorer_for(settings))
        # The worker's first conversations pay for imports and the sandbox's first checks.
        await bounded([driver.new_id("warm", j) for j in range(20)], 10, driver.send)
        result["meta"] = {
            "cpus": os.cpu_count(),
            "server": server,
            "sdk": temporalio.__version__,
            "max_cached_workflows": max_cached_workflows(),
            "sticky_queue_seconds": stack.sticky_seconds,
            "load_average_start": load_average(),
            "folder": str(folder),
        }
        if "idle" in args.part_set and args.levels:
            result["idle"] = await idle_part(stack, driver, args.levels)
        if "long" in args.part_set and args.long:
            result["long"] = await long_part(driver, args.long, args.rounds)
        if "workers" in args.part_set:
            result["workers"] = await workers_part(stack, driver, args.rounds)
        if "actions" in args.part_set:
            result["actions"] = await actions_part(client, folder)
        if "gateway" in args.part_set:
            await stack.wait_gateway()
            result["gateway"] = await gateway_part(stack, driver, args.rounds)
        if "codec" in args.part_set:
            carried = max((max(row["carried_input_kib"]) for row in result.get("long", [])), default=256.0)
            result["codec"] = codec_part(carried)
        result["meta"]["load_average_end"] = load_average()
    finally:
        stack.stop()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Wrote {args.json}")
    if args.chart:
        chart(result, args.chart)
        print(f"Wrote {args.chart}")
    return result


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
