"""A deployment's labelled messages, for adapting the classifier: from labelled JSONL or from the store.

One row is one customer message and one intent it has (`present`) or does not have:

- **false positive** (review label `necessary = no`): the message that escalated did not have the intents
  behind the triggers that fired; one row `present = false` per such intent.
- **missed escalation** (a conversation that should have been handed off from message M): M has the
  label's intent, `human_request` when the label names none; one row `present = true`.
- **corrected** (an agent's or reviewer's correction of one message's intents): as given.

The JSONL is `baton replay`'s (and `baton export`'s): one conversation a line with its `messages` and
`label`. A label with `escalate: false` on a conversation is a false positive for every customer message
the parent model reads an escalating intent in (an intent a trigger of the policy uses); `missed: true`
with `from_message` (the index of M in `messages`, as `baton export` writes it) and optionally `intent`
marks a missed escalation; `intents`, a list of `{"message_index", "intent", "present"}`, gives corrected
intents.

The store holds no message text: `--from-store` reads the labels there (review labels, missed labels)
and the messages' text from each conversation's `state` query in Temporal (as `baton export` does).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from baton.contract.messages import ConversationState, Intent
from baton.policies.schema import Policy

Origin = Literal["false_positive", "missed", "corrected"]
QUERY_TIMEOUT = 10.0  # seconds for one conversation's state query (answered by a running worker)


@dataclass(frozen=True)
class DeploymentRow:
    text: str
    intent: Intent
    present: bool
    origin: Origin
    ref: str  # conversation and message, for the log


def fingerprint(rows: Sequence[DeploymentRow]) -> str:
    """SHA-256 of the rows' text, intent and label, in their order (the order is deterministic)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.text, row.intent.value, row.present]).encode("utf-8"))
    return digest.hexdigest()


class IntentCorrection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_index: int = Field(ge=0)
    intent: Intent
    present: bool = True


class TrainingLabel(BaseModel):
    """The fields of a replay label that training reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    escalate: bool | None = None
    missed: bool = False
    from_message: int | None = Field(default=None, ge=0, description="A missed escalation's message M, its index")
    intent: Intent = Intent.HUMAN_REQUEST
    intents: list[IntentCorrection] = Field(default_factory=list)


class LabelledInputError(ValueError):
    pass


class Reader(Protocol):
    version: str

    def score(self, text: str) -> Any: ...


def escalating_intents(policy: Policy) -> set[Intent]:
    """The intents some trigger of the policy conditions on."""
    found: set[Intent] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("kind") == "intent" and "intent" in node:
                found.add(Intent(node["intent"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk([t.model_dump(mode="json") for t in policy.triggers])
    return found


def rows_from_jsonl(lines: Iterable[str], source: str, parent: Reader, policy: Policy) -> list[DeploymentRow]:
    """The labelled rows of replay JSONL; errors name the line and the field."""
    from baton.apps.replay.transcripts import ReplayInputError, read_transcripts

    try:
        conversations = read_transcripts(lines, source)
    except ReplayInputError as err:
        raise LabelledInputError(str(err)) from err
    watched = escalating_intents(policy)
    rows: list[DeploymentRow] = []
    problems: list[str] = []
    for conv in conversations:
        raw = conv.label.model_dump() if conv.label is not None else {}
        try:
            label = TrainingLabel.model_validate(raw)
        except ValidationError as err:
            problems += [
                f"{source}: {conv.conversation_id}: label.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in err.errors()
            ]
            continue
        messages = conv.messages
        for field, index in [
            ("from_message", label.from_message),
            *(("intents", c.message_index) for c in label.intents),
        ]:
            if index is not None and (index >= len(messages) or messages[index].role != "customer"):
                problems.append(f"{source}: {conv.conversation_id}: label.{field}: {index} is not a customer message")
        if problems:
            continue
        ref = conv.conversation_id
        if label.from_message is not None:
            rows.append(
                DeploymentRow(
                    messages[label.from_message].text, label.intent, True, "missed", f"{ref}#{label.from_message}"
                )
            )
        elif label.escalate is False:
            for i, message in enumerate(messages):
                if message.role != "customer":
                    continue
                for intent in sorted(set(parent.score(message.text).intents) & watched, key=list(Intent).index):
                    rows.append(DeploymentRow(message.text, intent, False, "false_positive", f"{ref}#{i}"))
        for c in label.intents:
            rows.append(
                DeploymentRow(
                    messages[c.message_index].text, c.intent, c.present, "corrected", f"{ref}#{c.message_index}"
                )
            )
    if problems:
        raise LabelledInputError("\n".join(problems))
    return rows


@dataclass(frozen=True)
class StoreLabel:
    """A label read from the store, before its message's text is known."""

    conversation_id: str
    message_id: str
    origin: Origin
    triggers: tuple[str, ...] = ()


async def store_labels(database_url: str) -> list[StoreLabel]:
    """False positives (the newest review label of an escalation says `necessary = no`) and missed
    escalations, from the store's current tables, in a fixed order."""
    from sqlalchemy import select

    from baton.store.database import create_engine, session_factory
    from baton.store.models import Escalation, MissedLabel, ReviewLabel

    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            reviews = (
                await session.execute(
                    select(Escalation.id, Escalation.conversation_id, Escalation.message_id, Escalation.triggers,
                           ReviewLabel.necessary, ReviewLabel.labelled_at)
                    .join(ReviewLabel, ReviewLabel.escalation_id == Escalation.id)
                    .order_by(Escalation.id, ReviewLabel.labelled_at, ReviewLabel.reviewer)
                )
            ).all()  # fmt: skip
            missed = (
                await session.execute(
                    select(MissedLabel.conversation_id, MissedLabel.message_id)
                    .order_by(MissedLabel.conversation_id, MissedLabel.labelled_at, MissedLabel.reviewer)
                )
            ).all()  # fmt: skip
    finally:
        await engine.dispose()
    newest: dict[str, Any] = {}
    for row in reviews:
        newest[row.id] = row  # ordered by time: the last one is the newest verdict
    labels = [
        StoreLabel(r.conversation_id, r.message_id, "false_positive", tuple(r.triggers or ()))
        for r in newest.values()
        if r.necessary is False
    ]
    seen: set[tuple[str, str]] = set()
    for m in missed:
        if (m.conversation_id, m.message_id) not in seen:
            seen.add((m.conversation_id, m.message_id))
            labels.append(StoreLabel(m.conversation_id, m.message_id, "missed"))
    return labels


def trigger_intents(policy: Policy, trigger_ids: Iterable[str]) -> set[Intent]:
    """The intents the named triggers condition on."""
    by_id = {t.id: t for t in policy.triggers}
    found: set[Intent] = set()
    for trigger_id in trigger_ids:
        if trigger_id in by_id:
            found |= escalating_intents(policy.model_copy(update={"triggers": [by_id[trigger_id]]}))
    return found


def rows_from_states(
    labels: Sequence[StoreLabel], states: dict[str, ConversationState], policy: Policy
) -> tuple[list[DeploymentRow], list[str]]:
    """The rows of store labels, given their conversations' states; and the labels that could not be read."""
    rows: list[DeploymentRow] = []
    skipped: list[str] = []
    for label in labels:
        state = states.get(label.conversation_id)
        entry = next((m for m in state.transcript if m.message_id == label.message_id), None) if state else None
        ref = f"{label.conversation_id}#{label.message_id}"
        if entry is None or entry.role != "customer":
            skipped.append(f"{ref}: message not found in the conversation's state")
            continue
        if label.origin == "missed":
            rows.append(DeploymentRow(entry.text, Intent.HUMAN_REQUEST, True, "missed", ref))
            continue
        detected = set(entry.signals.intents) if entry.signals else set()
        wrong = trigger_intents(policy, label.triggers) & (detected or set(Intent))
        for intent in sorted(wrong, key=list(Intent).index):
            rows.append(DeploymentRow(entry.text, intent, False, "false_positive", ref))
    return rows, skipped


async def rows_from_store(database_url: str, client: Any, policy: Policy) -> tuple[list[DeploymentRow], list[str]]:
    """Labels from the store, texts from each conversation's `state` query (a worker must be running)."""
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    from baton.apps.client import get_state

    labels = await store_labels(database_url)
    states: dict[str, ConversationState] = {}
    skipped: list[str] = []
    for conversation_id in dict.fromkeys(label.conversation_id for label in labels):
        try:
            states[conversation_id] = await asyncio.wait_for(get_state(client, conversation_id), QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError) as err:
            skipped.append(f"{conversation_id}: state not readable ({err})")
        except TimeoutError:
            skipped.append(f"{conversation_id}: no answer to the state query in {QUERY_TIMEOUT:g} s (no worker?)")
    rows, missing = rows_from_states(labels, states, policy)
    return rows, skipped + missing
