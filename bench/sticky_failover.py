"""How long a decision waits after its worker dies, for a given sticky queue timeout.

A worker keeps each conversation it ran in its cache and the server sends that conversation's next
task to the worker's own (sticky) queue. After `kill -9` nobody polls that queue: the task waits there
for the sticky queue's schedule-to-start timeout, then goes to the shared queue where a live worker
replays the history. So the first decision of each conversation after the crash costs that timeout.

For each timeout given, on a fresh stack (bench/stack.py, no gateway) with two workers polling: N
conversations each get a first message (each cached by whichever worker ran it), worker A is killed with
`kill -9`, and at once every conversation sends its second message. The ones A had cached wait for the
timeout, then worker B replays them; prints their latencies. (With a single worker, its restart takes
longer than the timeout on a loaded machine; the server also stops routing to a sticky queue nobody
has polled for 10 s.)

    python -m bench.sticky_failover --timeouts 10,2 --conversations 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

from baton.apps import client as baton
from baton.contract.messages import ConversationStart, MessageIn
from baton.settings import Settings
from baton.worker.connection import connect
from bench.stack import Stack, load_average, percentile


async def _decide(client: Client, queue: str, conversation: str, message_id: str) -> float:
    start = ConversationStart(conversation_id=conversation, customer_id=f"cus-{conversation}")
    message = MessageIn(message_id=message_id, role="customer", text="How do I export my invoices?")
    began = time.monotonic()
    await baton.send_message(client, queue, start, message)
    return time.monotonic() - began


async def measure(sticky_seconds: float, conversations: int) -> dict[str, object]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="baton-sticky-")), sticky_seconds=sticky_seconds)
    stack.start_temporal()
    try:
        stack.start_worker("worker-a")
        stack.start_worker("worker-b")
        client = await connect(Settings(temporal_address=f"127.0.0.1:{stack.temporal_port}"))
        ids = [f"sticky-{i:03d}" for i in range(conversations)]
        await asyncio.gather(*(_decide(client, stack.task_queue, c, "m1") for c in ids))
        await asyncio.sleep(1.0)  # both workers polling, every conversation cached on one of them
        baseline = await asyncio.gather(*(_decide(client, stack.task_queue, c, "m2") for c in ids))
        stack.kill_worker("worker-a")
        load = load_average()
        latencies = await asyncio.gather(*(_decide(client, stack.task_queue, c, "m3") for c in ids))
    finally:
        stack.stop()
    slow = [x for x in latencies if x > 1.5 * max(baseline)]
    return {
        "sticky_queue_seconds": sticky_seconds,
        "conversations": conversations,
        "before_crash_max_seconds": round(max(baseline), 2),
        "after_crash_p50_seconds": round(percentile(latencies, 50), 2),
        "after_crash_on_the_dead_worker": len(slow),
        "after_crash_max_seconds": round(max(latencies), 2),
        "load_average": load,
    }


async def main_async(timeouts: list[float], conversations: int) -> None:
    for timeout in timeouts:
        print(json.dumps(await measure(timeout, conversations)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeouts", default="10,2", help="sticky queue timeouts to compare, in seconds")
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main_async([float(t) for t in args.timeouts.split(",")], args.conversations))


if __name__ == "__main__":
    main()
