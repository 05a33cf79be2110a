"""Side effects of a conversation, as typed activity calls by reference.

Effects retry with backoff but never fail the conversation: a failure is logged and answered with
None, and the caller decides what that means (an undelivered message is listed, a failed enqueue
falls back to the policy's wait estimate). Background effects (store records, reports, pages) start
at once and are all awaited before the run ends; each is an idempotent upsert or a keyed send, so
their order does not matter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from baton.contract.activities import Delivery
from baton.contract.messages import ConversationState, OutboundKind, OutboundMessage, TranscriptEntry, TranscriptRole
from baton.workflows.conversation import decision

A = TypeVar("A")
R = TypeVar("R")

# A customer message that cannot be delivered in ten minutes is stale: it stays in the transcript
# and is listed as undelivered.
EFFECT_TIMEOUT = timedelta(seconds=15)
EFFECT_DEADLINE = timedelta(minutes=10)
EFFECT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# Summaries shown in the UI where the activity's name does not read well as a sentence.
SUMMARIES = {"page_on_call": "Page on-call"}


def activity_name(fn: Callable[..., Any]) -> str:
    return fn.__name__


class Effects:
    def __init__(self, state: ConversationState) -> None:
        self._state = state
        self._background: list[asyncio.Task[Any]] = []

    async def run(self, fn: Callable[[Any, A], Awaitable[R]], arg: A, summary: str) -> R | None:
        """Run the activity `fn` (an interface method of baton.contract.activities); None if it failed for good."""
        try:
            return await workflow.execute_activity_method(
                fn,
                arg,
                start_to_close_timeout=EFFECT_TIMEOUT,
                schedule_to_close_timeout=EFFECT_DEADLINE,
                retry_policy=EFFECT_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            workflow.logger.warning(f"{activity_name(fn)} failed", extra={"error": str(err.cause or err)})
            return None

    def in_background(self, fn: Callable[[Any, A], Awaitable[Any]], arg: A) -> None:
        """Start an effect no decision waits on; `flush` awaits it before the run ends."""
        self._background = [t for t in self._background if not t.done()]
        name = activity_name(fn)
        summary = SUMMARIES.get(name, name.replace("_", " ").capitalize())
        self._background.append(asyncio.create_task(self.run(fn, arg, summary)))

    @property
    def pending(self) -> bool:
        return bool(self._background)

    async def flush(self) -> None:
        while self._background:
            await self._background.pop(0)

    # --- the transcript and what the customer is told ----------------------------------------

    def append(self, message_id: str, role: TranscriptRole, text: str) -> TranscriptEntry:
        return decision.record(self._state, message_id, role, text, workflow.now())

    async def say(self, kind: OutboundKind, text: str, message_id: str) -> None:
        """Tell the customer something ourselves: recorded, then delivered through the backend's webhook."""
        self.append(message_id, "baton", text)
        await self.deliver(kind, text, message_id)

    async def deliver(self, kind: OutboundKind, text: str, message_id: str, agent_id: str | None = None) -> None:
        outbound = OutboundMessage(
            conversation_id=self._state.start.conversation_id,
            channel=self._state.start.channel,
            message_id=message_id,
            kind=kind,
            text=text,
            agent_id=agent_id,
        )
        if await self.run(Delivery.deliver_to_customer, outbound, f"Deliver a {kind} message to the customer") is None:
            escalation = self._state.escalation
            if escalation is not None:
                escalation.undelivered.append(message_id)
