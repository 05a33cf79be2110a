"""What Chatwoot shows after Baton decided on a customer message, and CSAT answers; one short workflow each.

The gateway starts one ``ChatwootReplyWorkflow`` per incoming Chatwoot message, with a workflow id made
of the message's id: a webhook Chatwoot delivers twice starts it once. Each step is an activity that is
safe to retry (posts are found again by their source_id; team, labels and status are set, not toggled
blindly), and a step that completed is never run again, so every effect happens once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from baton.contract import chatwoot
    from baton.contract.chatwoot import (
        BotReply,
        BotRequest,
        BotTranscriptEntry,
        Chatwoot,
        ChatwootCsat,
        ChatwootPost,
        ChatwootReply,
        CsatRecorded,
        HandoffFacts,
        HandoffFactsRequest,
        LabelRequest,
        StatusRequest,
        TeamRequest,
    )
    from baton.domain.chatwoot import decision_note, labels_for

STEP_TIMEOUT = timedelta(seconds=20)
# A message the customer should have seen minutes ago is stale; the step gives up and the failure is shown.
STEP_DEADLINE = timedelta(minutes=10)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# The note is written in the background by the conversation; the facts wait for it this long.
NOTE_WAIT = timedelta(seconds=30)
BOT_TIMEOUT = timedelta(seconds=30)
BOT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)

A = TypeVar("A")
R = TypeVar("R")


@workflow.defn(name=chatwoot.REPLY_WORKFLOW)
class ChatwootReplyWorkflow:
    @workflow.run
    async def run(self, reply: ChatwootReply) -> list[str]:
        """Returns the steps done, in order (shown in the UI as the result)."""
        self._done: list[str] = []
        decision = reply.decision
        if decision.action == "escalate":
            await self._escalate(reply)
        elif decision.customer_text:
            # With the bot (a surge's incident status) or waiting for a human (the status of the wait).
            await self._post(reply, "status", decision.customer_text)
        elif decision.action == "continue":
            await self._bot(reply)
        return self._done

    async def _bot(self, reply: ChatwootReply) -> None:
        request = BotRequest(conversation_id=reply.baton_conversation_id, message_id=reply.message_id, text=reply.text)
        try:
            answer = await workflow.execute_activity_method(
                Chatwoot.ask_bot,
                request,
                start_to_close_timeout=BOT_TIMEOUT,
                retry_policy=BOT_RETRY,
                summary="Ask the bot for a reply",
            )
        except ActivityError as err:
            # The customer's message is in Chatwoot and in Baton; without the bot's answer an agent can still see it.
            workflow.logger.warning("the bot did not answer", extra={"error": str(err.cause or err)})
            return
        if not isinstance(answer, BotReply) or not answer.reply:
            return  # no bot endpoint: an agent bot in Chatwoot replies itself
        if await self._post(reply, "bot", answer.reply):
            entry = BotTranscriptEntry(
                baton_conversation_id=reply.baton_conversation_id,
                message_id=f"{reply.message_id}:bot",
                text=answer.reply,
            )
            recorded = await self._step(Chatwoot.record_bot_reply, entry, "Record the bot's reply in the conversation")
            if recorded and recorded.done:
                self._done.append("bot_recorded")

    async def _escalate(self, reply: ChatwootReply) -> None:
        decision = reply.decision
        if decision.customer_text:
            await self._post(reply, "escalation", decision.customer_text)
        try:
            facts = await workflow.execute_activity_method(
                Chatwoot.chatwoot_handoff_facts,
                HandoffFactsRequest(
                    baton_conversation_id=reply.baton_conversation_id,
                    decision=decision,
                    wait_seconds=NOTE_WAIT.total_seconds(),
                ),
                start_to_close_timeout=NOTE_WAIT + STEP_TIMEOUT,
                schedule_to_close_timeout=STEP_DEADLINE,
                retry_policy=STEP_RETRY,
                summary="Read the handoff note and queue",
            )
        except ActivityError as err:
            # The conversation could not be read: the agents still get a note, labels and the open conversation.
            workflow.logger.warning("handoff facts unavailable", extra={"error": str(err.cause or err)})
            facts = HandoffFacts(note=decision_note(decision), labels=labels_for(decision, None), note_ready=False)
        await self._post(reply, "note", facts.note, private=True)
        target = reply.chatwoot
        team = TeamRequest(chatwoot=target, queue=facts.queue)
        if (done := await self._step(Chatwoot.assign_chatwoot_team, team, "Set the conversation's team")) and done.done:
            self._done.append("team")
        labels = LabelRequest(chatwoot=target, labels=facts.labels)
        if (done := await self._step(Chatwoot.label_chatwoot_conversation, labels, "Add labels")) and done.done:
            self._done.append("labels")
        # Last: opening the conversation is what puts it in front of the agents, with everything above in place.
        opened = await self._step(Chatwoot.set_chatwoot_status, StatusRequest(chatwoot=target), "Open for agents")
        if opened and opened.done:
            self._done.append("open")

    async def _post(self, reply: ChatwootReply, what: str, content: str, private: bool = False) -> bool:
        post = ChatwootPost(chatwoot=reply.chatwoot, key=f"{reply.message_id}:{what}", content=content, private=private)
        summary = f"Post the {what} {'note' if private else 'message'} to Chatwoot"
        result = await self._step(Chatwoot.post_to_chatwoot, post, summary)
        if result is not None:
            self._done.append(what)
        return result is not None

    async def _step(self, fn: Callable[[Any, A], Awaitable[R]], arg: A, summary: str) -> R | None:
        """Run one step; None when it failed for good (logged: the next steps still run)."""
        try:
            return await workflow.execute_activity_method(
                fn,
                arg,
                start_to_close_timeout=STEP_TIMEOUT,
                schedule_to_close_timeout=STEP_DEADLINE,
                retry_policy=STEP_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            workflow.logger.warning(f"{fn.__name__} failed", extra={"error": str(err.cause or err)})
            return None


@workflow.defn(name=chatwoot.CSAT_WORKFLOW)
class ChatwootCsatWorkflow:
    @workflow.run
    async def run(self, csat: ChatwootCsat) -> CsatRecorded:
        return await workflow.execute_activity_method(
            Chatwoot.record_chatwoot_csat,
            csat,
            start_to_close_timeout=STEP_TIMEOUT,
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=STEP_RETRY,
            summary="Record the customer's CSAT",
        )
