"""What the classifier and the LLM judge exchange with the workflow: per-message scores, recorded in
conversation histories (activity results), so every field has a default and unknown ones are ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from baton.contract.labels import ContractModel, Intent, Topic


class MessageScores(ContractModel):
    """The classifier's reading of one customer message on its own, recorded in the conversation's history
    (an activity result), so that a later model never changes the scores a conversation received."""

    model_version: str
    probabilities: dict[Intent, float] = Field(default_factory=dict, description="Calibrated, per intent")
    intents: list[Intent] = Field(default_factory=list, description="Intents at or above the model's thresholds")
    topic: Topic = Topic.OTHER
    topic_probabilities: dict[Topic, float] = Field(default_factory=dict)
    frustration: float = Field(default=0.0, ge=0, le=1, description="This message alone")
    source: Literal["model", "llm", "rules"] = "model"
    reason: str | None = Field(default=None, description="The LLM judge's one-line reason, when it decided")


class ScoreRequest(ContractModel):
    """One customer message for the classifier (a local activity, so its answer is recorded in history)."""

    text: str
    model_version: str | None = Field(default=None, description="The version the conversation is pinned to")


class JudgeRequest(ContractModel):
    """Ask the LLM judge about one customer message the classifier was unsure of."""

    conversation_id: str
    message_id: str
    text: str
    scores: MessageScores = Field(description="The classifier's answer: it stands unless the judge decides")
    max_tokens: int = Field(default=200, gt=0, description="Completion tokens for this call")
    tokens_used: int = Field(default=0, ge=0, description="Tokens the conversation has spent on the judge so far")
    token_budget: int = Field(default=4000, ge=0, description="The conversation's judge budget, in tokens")
    redact: bool = Field(default=True, description="Personal data out of the prompt (the policy's redaction.llm)")


class JudgeResult(ContractModel):
    scores: MessageScores = Field(description="The judge's scores (source 'llm'), or the classifier's unchanged")
    tokens: int = Field(default=0, ge=0, description="Tokens the call spent (prompt and completion), from usage")
    judged: bool = False
    reason: str | None = Field(default=None, description="The judge's one-line reason, when it decided")
    failure: str | None = Field(default=None, description="Why the classifier's scores stand, when not judged")
