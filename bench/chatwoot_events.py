"""How long the gateway takes to answer Chatwoot's `message_created` (Chatwoot waits 5 s by default).

    python -m bench.chatwoot_events                      # 30 conversations, two customer messages each
    python -m bench.chatwoot_events --conversations 100

The stack is the one tests/test_chatwoot.py runs: the gateway on loopback, a worker on the Temporal test
server (time-skipping, in real time here), a loopback Chatwoot and bot endpoint. Each answer covers the
signature check, the classifier's score in the gateway, the conversation's update (with start, for a first
message) and the start of the reply workflow; the bot and Chatwoot calls happen afterwards, in the workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from baton.store.database import migrate
from tests.conftest import STORE_URL, time_skipping_server
from tests.test_chatwoot import _numbers, message_event, running, send

MESSAGES = ("How do I export my invoices to CSV?", "And where is the billing page?")


def _summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"{name}: n={len(ordered)} p50={statistics.median(ordered):.0f} ms p95={p95:.0f} ms max={ordered[-1]:.0f} ms"


async def main(conversations: int) -> None:
    migrate(STORE_URL)
    async with time_skipping_server() as env, running(env, f"bench-{uuid.uuid4().hex[:8]}", True) as stack:
        await send(stack.http, message_event(next(_numbers), 1, "warm up"))
        timings: dict[str, list[float]] = {"first message": [], "second message": []}
        for _ in range(conversations):
            number = next(_numbers)
            for index, (name, text) in enumerate(zip(timings, MESSAGES, strict=True), start=1):
                started = time.perf_counter()
                answer = await send(stack.http, message_event(number, index, text))
                timings[name].append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
        for name, values in timings.items():
            print(_summary(name, values))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=30)
    asyncio.run(main(parser.parse_args().conversations))
