"""The fault soak: conversations through the gateway while the worker and Temporal are killed.

`make soak` (or `python -m bench.soak`) starts the stack on loopback (bench/stack.py: a Temporal dev
server on a SQLite file in a fresh folder, a worker and a gateway in their own processes) and drives
100 conversations at once, each a customer question, a request for a person (an escalation), the
agent's pickup, the agent's reply and the resolution. Meanwhile it kills the worker with `kill -9`
and starts a new one, then kills Temporal with `kill -9` and starts it on the same file.

Clients follow the documented retry rule (docs/reliability.md): a 503, or no answer at all, is sent
again with the same message_id after Retry-After. What each client was told is written down; at the
end the state of every conversation is checked against it (`check`), and every acknowledged message is
sent once more to check its decision did not change. It prints the figures and exits 1 on any loss,
duplicate, changed decision or incomplete escalation.

`python -m bench.soak --load 50 --seconds 60` is the load run instead: 50 conversations sending
messages back to back for 60 s, no faults; it prints the throughput, latency percentiles, the surge
checks that failed or timed out in the worker's log, and the background surge reads that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.stack import Stack, load_average, percentile

REQUEST_DEADLINE = 180.0  # seconds a client keeps retrying one request through the faults
RETRYABLE = {502, 503, 504}

QUESTION = "Hi, how do I export my invoices as CSV?"
PERSON = "This is not helping at all. I want to talk to a human agent now."
# The faults come when a share of the traffic has been answered, so that requests are in flight at
# each: the worker dies among the customers' messages, Temporal among the agents' pickups.
WORKER_KILL_AFTER = 0.3  # of the customer messages acknowledged
TEMPORAL_KILL_AFTER = 0.3  # of the pickups acknowledged


@dataclass
class Progress:
    """Acknowledgements so far, and the moments the faults wait for."""

    conversations: int
    messages: int = 0
    pickups: int = 0
    kill_worker: asyncio.Event = field(default_factory=asyncio.Event)
    kill_temporal: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledged_message(self) -> None:
        self.messages += 1
        if self.messages >= WORKER_KILL_AFTER * 2 * self.conversations:
            self.kill_worker.set()

    def acknowledged_pickup(self) -> None:
        self.pickups += 1
        if self.pickups >= TEMPORAL_KILL_AFTER * self.conversations:
            self.kill_temporal.set()


@dataclass
class Told:
    """What one conversation's client was told: every 200 it got, by message id."""

    conversation_id: str
    agent_id: str
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    agent_messages: list[str] = field(default_factory=list)
    picked_up: bool = False
    resolved: bool = False
    retries: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.changed or self.incomplete)


def check(told: Told, state: dict[str, Any]) -> Findings:
    """The conversation's state against what its client was told: each acknowledged message is in the
    transcript exactly once, no message id twice, and an acknowledged escalation picked up and resolved."""
    found = Findings()
    ids = [entry["message_id"] for entry in state.get("transcript", [])]
    for message_id in [*told.decisions, *told.agent_messages]:
        count = ids.count(message_id)
        if count == 0:
            found.lost.append(f"{told.conversation_id}/{message_id}")
        elif count > 1:
            found.duplicated.append(f"{told.conversation_id}/{message_id} x{count}")
    for message_id in {i for i in ids if ids.count(i) > 1} - set(told.decisions) - set(told.agent_messages):
        found.duplicated.append(f"{told.conversation_id}/{message_id} x{ids.count(message_id)}")
    escalated = any(d.get("action") == "escalate" for d in told.decisions.values())
    escalation = state.get("escalation") or {}
    if escalated:
        missing = [
            what
            for what, ok in (
                ("picked up", told.picked_up and escalation.get("picked_up_at")),
                ("resolved", told.resolved and escalation.get("resolved_at")),
                ("note", escalation.get("note")),
            )
            if not ok
        ]
        if missing:
            found.incomplete.append(f"{told.conversation_id}: not {', '.join(missing)} (phase {state.get('phase')})")
    return found


async def _request(http: httpx.AsyncClient, method: str, url: str, told: Told, **kwargs: Any) -> httpx.Response:
    """One request under the retry rule: the same body again after Retry-After until a final answer."""
    deadline = time.monotonic() + REQUEST_DEADLINE
    while True:
        began = time.monotonic()
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code not in RETRYABLE:
            told.latencies.append(time.monotonic() - began)
            return response
        if time.monotonic() > deadline:
            raise RuntimeError(f"{method} {url}: no final answer in {REQUEST_DEADLINE}s")
        told.retries += 1
        wait = float(response.headers.get("Retry-After", 1)) if response is not None else 1.0
        await asyncio.sleep(min(wait, 5.0))


def _message(told: Told, message_id: str, text: str, role: str = "customer") -> dict[str, Any]:
    body: dict[str, Any] = {"message_id": message_id, "role": role, "text": text}
    if role == "agent":
        body["agent_id"] = told.agent_id
    return {"customer_id": f"cus-{told.conversation_id}", "message": body}


async def _conversation(http: httpx.AsyncClient, told: Told, progress: Progress) -> None:
    base = f"/v1/conversations/{told.conversation_id}"
    for message_id, text in (("m1", QUESTION), ("m2", PERSON)):
        response = await _request(http, "POST", f"{base}/messages", told, json=_message(told, message_id, text))
        if response.status_code == 200:
            told.decisions[message_id] = response.json()
            progress.acknowledged_message()
    if told.decisions.get("m2", {}).get("action") != "escalate":
        return
    pickup = await _request(http, "POST", f"{base}/pickup", told, json={"agent_id": told.agent_id})
    told.picked_up = pickup.status_code == 200
    if told.picked_up:
        progress.acknowledged_pickup()
    reply = _message(told, "a1", "Hi, I'm here. Let me look at your export.", role="agent")
    if (await _request(http, "POST", f"{base}/messages", told, json=reply)).status_code == 200:
        told.agent_messages.append("a1")
    resolve = await _request(
        http, "POST", f"{base}/resolve", told, json={"agent_id": told.agent_id, "necessary": True, "csat": 5}
    )
    # A resolve retried after it was applied is refused as "not with an agent"; the state says which.
    told.resolved = resolve.status_code in (200, 409)


async def _faults(stack: Stack, progress: Progress, log: list[str], started: float) -> None:
    await progress.kill_worker.wait()
    stack.kill_worker()
    log.append(f"{time.monotonic() - started:5.1f}s worker kill -9 ({progress.messages} messages acknowledged)")
    await asyncio.sleep(1.0)
    stack.start_worker()
    log.append(f"{time.monotonic() - started:5.1f}s worker started")
    await progress.kill_temporal.wait()
    pickups = progress.pickups
    down = await asyncio.to_thread(stack.restart_temporal)
    log.append(
        f"{time.monotonic() - started:5.1f}s Temporal kill -9 ({pickups} pickups acknowledged) and restart on the "
        f"same file ({down:.1f}s)"
    )


async def soak(conversations: int, folder: Path) -> int:
    stack = Stack(folder)
    stack.start_temporal()
    stack.start_worker()
    stack.start_gateway()
    try:
        await stack.wait_gateway()
        tolds = [Told(f"soak-{i:03d}", f"agent-{i % 7}") for i in range(conversations)]
        events: list[str] = []
        limits = httpx.Limits(max_connections=conversations + 10)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=40, limits=limits) as http:
            started = time.monotonic()
            progress = Progress(conversations)
            faults = asyncio.create_task(_faults(stack, progress, events, started))
            await asyncio.gather(*(_conversation(http, told, progress) for told in tolds))
            driven = time.monotonic() - started
            await faults
            findings = Findings()
            for told in tolds:
                state = (await _request(http, "GET", f"/v1/conversations/{told.conversation_id}", told)).json()
                part = check(told, state)
                # The same message again: the decision it got the first time, never a new one.
                for message_id, decision in told.decisions.items():
                    text = QUESTION if message_id == "m1" else PERSON
                    again = await _request(
                        http,
                        "POST",
                        f"/v1/conversations/{told.conversation_id}/messages",
                        told,
                        json=_message(told, message_id, text),
                    )
                    if again.status_code != 200 or again.json() != decision:
                        part.changed.append(f"{told.conversation_id}/{message_id}: {again.status_code}")
                for kind in ("lost", "duplicated", "changed", "incomplete"):
                    getattr(findings, kind).extend(getattr(part, kind))
    finally:
        stack.stop()
    acknowledged = sum(len(t.decisions) + len(t.agent_messages) for t in tolds)
    escalations = sum(1 for t in tolds if t.decisions.get("m2", {}).get("action") == "escalate")
    latencies = [x for t in tolds for x in t.latencies]
    print("\n".join(events))
    print(
        json.dumps(
            {
                "conversations": conversations,
                "seconds": round(driven, 1),
                "acknowledged_messages": acknowledged,
                "escalations": escalations,
                "picked_up": sum(t.picked_up for t in tolds),
                "resolved": sum(t.resolved for t in tolds),
                "retries": sum(t.retries for t in tolds),
                "lost": len(findings.lost),
                "duplicated": len(findings.duplicated),
                "changed_on_retry": len(findings.changed),
                "incomplete_escalations": len(findings.incomplete),
                "p50_seconds": round(percentile(latencies, 50), 3),
                "p99_seconds": round(percentile(latencies, 99), 3),
                "max_seconds": round(max(latencies), 3),
                "load_average": load_average(),
                "folder": str(folder),
            },
            indent=2,
        )
    )
    for kind in ("lost", "duplicated", "changed", "incomplete"):
        for line in getattr(findings, kind)[:10]:
            print(f"{kind}: {line}", file=sys.stderr)
    return 0 if findings.ok and escalations == conversations else 1


# An escalation that waited on the surge check past its bound, or whose check failed (the workflow logs it).
SURGE_CHECK_FAILED = ("surge check failed", "operations_status")
# A background read of the operations workflow that failed; escalations meanwhile used the last known state.
SURGE_READ_FAILED = "surge_read_failed"


async def load(conversations: int, seconds: float, folder: Path, sticky_seconds: float, escalate_every: int) -> int:
    """Conversations sending messages back to back through the gateway for `seconds`, no faults; every
    `escalate_every`-th message of a conversation asks for a person, and the next goes to a new conversation."""
    stack = Stack(folder, sticky_seconds=sticky_seconds)
    stack.start_temporal()
    stack.start_worker()
    stack.start_gateway()
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {"first": [], "escalation": [], "other": []}
    statuses: dict[int, int] = {}
    try:
        await stack.wait_gateway()
        limits = httpx.Limits(max_connections=conversations + 10)
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as http:
            load_before = load_average()
            stop_at = time.monotonic() + seconds

            async def converse(i: int) -> None:
                n, round_ = 0, 0
                while time.monotonic() < stop_at:
                    conversation = f"load-{i:03d}-{round_}"
                    text = PERSON if n % escalate_every == escalate_every - 1 else QUESTION
                    message = {"message_id": f"m{n}", "role": "customer", "text": text}
                    body = {"customer_id": f"cus-{i}", "message": message}
                    began = time.monotonic()
                    response = await http.post(f"/v1/conversations/{conversation}/messages", json=body)
                    latencies.append(time.monotonic() - began)
                    kind = "escalation" if text == PERSON else "first" if n % escalate_every == 0 else "other"
                    by_kind[kind].append(latencies[-1])
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    n += 1
                    if n % escalate_every == 0:
                        round_ += 1  # escalated: the client goes on with a new conversation

            began = time.monotonic()
            await asyncio.gather(*(converse(i) for i in range(conversations)))
            took = time.monotonic() - began
            load_after = load_average()
    finally:
        stack.stop()
    worker_log = stack.worker_log.read_text(errors="replace")
    surge_lines = [line for line in worker_log.splitlines() if any(s in line for s in SURGE_CHECK_FAILED)]
    reads_failed = [line for line in worker_log.splitlines() if SURGE_READ_FAILED in line]
    print(
        json.dumps(
            {
                "conversations": conversations,
                "seconds": round(took, 1),
                "messages": len(latencies),
                "throughput_per_second": round(len(latencies) / took, 1),
                "statuses": statuses,
                "p50_seconds": round(percentile(latencies, 50), 3),
                "p95_seconds": round(percentile(latencies, 95), 3),
                "p99_seconds": round(percentile(latencies, 99), 3),
                "max_seconds": round(max(latencies), 3),
                # A conversation's first message starts its workflow; an escalation joins the queue.
                "p50_p99_by_kind": {
                    kind: [round(percentile(values, 50), 2), round(percentile(values, 99), 2), len(values)]
                    for kind, values in by_kind.items()
                },
                "surge_check_timeouts_in_worker_log": len(surge_lines),
                "surge_background_reads_failed": len(reads_failed),
                "sticky_queue_seconds": sticky_seconds,
                "escalate_every": escalate_every,
                "load_average_before": load_before,
                "load_average_after": load_after,
                "folder": str(folder),
            },
            indent=2,
        )
    )
    for line in [*surge_lines, *reads_failed][:5]:
        print(f"worker log: {line}", file=sys.stderr)
    return 0 if not surge_lines and set(statuses) == {200} else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--load", type=int, metavar="N", help="the load run with N conversations instead")
    parser.add_argument("--seconds", type=float, default=60.0, help="the load run's length")
    parser.add_argument("--sticky-seconds", type=float, default=2.0, help="the worker's sticky queue timeout")
    parser.add_argument("--escalate-every", type=int, default=10, help="load run: every Nth message asks for a person")
    parser.add_argument("--folder", type=Path, help="where the databases and logs go (default: a new temp folder)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="baton-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.load:
        return asyncio.run(load(args.load, args.seconds, folder, args.sticky_seconds, args.escalate_every))
    return asyncio.run(soak(args.conversations, folder))


if __name__ == "__main__":
    raise SystemExit(main())
