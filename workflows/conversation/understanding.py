"""Understanding a customer message: the classifier's scores, recorded in history as a local activity's
result (a model upgrade never changes a score already given), the optional LLM judge for uncertain
messages, and the composition with the conversation so far."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from baton.contract.activities import Judge, Scoring
from baton.contract.messages import ConversationState, MessageIn, Signals, TranscriptEntry
from baton.contract.scoring import JudgeRequest, MessageScores, ScoreRequest
from baton.domain.scoring import score
from baton.policies.schema import Policy
from baton.workflows.conversation import patches
from baton.workflows.conversation.decision import signals_from

LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


async def understand(
    state: ConversationState, policy: Policy, message: MessageIn, earlier: list[TranscriptEntry]
) -> Signals:
    """The classifier's scores (recorded in history as a local activity's result), composed with the
    conversation so far. Conversations recorded before the classifier keep the rules they ran with."""
    text = message.text
    texts = [m.text for m in earlier]
    trail = [m.signals.frustration for m in earlier if m.signals]
    if not patches.patched(patches.CLASSIFIER):
        return score(text, texts, trail)
    if message.scores is not None:
        # Scored by the gateway or Baton's client before sending: recorded with the message already. A model
        # promoted since the conversation began scored it with another version than the one it pinned: the
        # worker scores it again with the pinned one, so a running conversation keeps its model.
        if not _other_version(state, message.scores):
            return await _judged(state, policy, message, message.scores, earlier)
        try:
            pinned = await _score(state, text, "Score the message with the conversation's model")
        except ActivityError as err:
            workflow.logger.warning(
                "pinned model unavailable; the gateway's scores stand", extra={"error": str(err.cause)}
            )
            pinned = message.scores
        return await _judged(state, policy, message, pinned, earlier)
    try:
        scores = await _score(state, text, "Score the message")
    except ActivityError as err:
        # A decision never waits on a broken model: the rules still know the clear cases.
        workflow.logger.warning("classifier unavailable; scored by the rules", extra={"error": str(err.cause)})
        return score(text, texts, trail)
    return await _judged(state, policy, message, scores, earlier)


def _other_version(state: ConversationState, scores: MessageScores) -> bool:
    """Scores from the classifier under another version than the conversation pinned; asked only then,
    so that histories recorded before the marker replay unchanged."""
    if state.model_version is None or scores.source != "model" or scores.model_version == state.model_version:
        return False
    return patches.patched(patches.PINNED_MODEL)


async def _score(state: ConversationState, text: str, summary: str) -> MessageScores:
    return await workflow.execute_local_activity_method(
        Scoring.score_message,
        ScoreRequest(text=text, model_version=state.model_version),
        start_to_close_timeout=LOCAL_TIMEOUT,
        retry_policy=LOCAL_RETRY,
        summary=summary,
    )


async def _judged(
    state: ConversationState,
    policy: Policy,
    message: MessageIn,
    scores: MessageScores,
    earlier: list[TranscriptEntry],
) -> Signals:
    """Pin the model version, ask the judge if the policy wants it, compose with the conversation."""
    if state.model_version is None:
        state.model_version = scores.model_version
    judge = policy.judge
    if judge.enabled and judge.unsure(scores.probabilities):
        scores = await _ask_judge(state, policy, message, scores)
    return signals_from(state, scores, message.text, earlier)


async def _ask_judge(
    state: ConversationState, policy: Policy, message: MessageIn, scores: MessageScores
) -> MessageScores:
    """The LLM judge's reading of an uncertain message; its activity never fails, so the classifier's
    answer stands on any problem (no endpoint, over budget, timeout, a malformed answer)."""
    judge = policy.judge
    if state.judge_tokens + judge.max_tokens > judge.token_budget:
        return scores
    request = JudgeRequest(
        conversation_id=state.start.conversation_id,
        message_id=message.message_id,
        text=message.text,
        scores=scores,
        max_tokens=judge.max_tokens,
        tokens_used=state.judge_tokens,
        token_budget=judge.token_budget,
        redact=policy.redaction.llm,
    )
    try:
        result = await workflow.execute_activity_method(
            Judge.judge_message,
            request,
            start_to_close_timeout=judge.timeout,
            retry_policy=RetryPolicy(maximum_attempts=1),
            summary="Ask the LLM judge about an uncertain message",
        )
    except ActivityError as err:
        workflow.logger.warning("LLM judge failed; the classifier's answer stands", extra={"error": str(err.cause)})
        return scores
    state.judge_tokens += result.tokens
    return result.scores
