"""A missed-escalation label through `baton export` and labelled replay: the expected outcome is "escalate",
from the customer message the label names; an escalation after it is a miss."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from baton.apps import evaluation
from baton.apps.export import label_for, transcript_line
from baton.apps.replay.summary import evaluation_lines
from baton.apps.replay.transcripts import ReplayConversation
from baton.apps.tune.conversations import read_scored
from baton.apps.tune.decide import decide
from baton.contract.messages import ConversationStart, ConversationState, Escalation, Signals, TranscriptEntry
from baton.policies import load_policy

NOW = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def _state() -> ConversationState:
    state = ConversationState(
        start=ConversationStart(conversation_id="c1", customer_id="cus-1"), closed_reason="closed"
    )
    texts = [
        ("c0", "customer", "my invoice is wrong"),
        ("b0", "bot", "Here is how invoices work"),
        ("c1", "customer", "that is not it, I was charged twice"),
        ("k1", "baton", "I'm bringing in a person"),
        ("a1", "agent", "Hi"),
        ("c2", "customer", "finally"),
    ]
    for i, (mid, role, text) in enumerate(texts):
        entry = TranscriptEntry(message_id=mid, role=role, text=text, at=NOW + timedelta(seconds=10 * i))
        if role == "customer":
            entry.signals = Signals(
                sentiment=-0.2, frustration=0.4, intents=["billing_dispute"], probabilities={"billing_dispute": 0.81}
            )
        state.transcript.append(entry)
    # It did escalate, at c2, and the agent said that was necessary: but it came late.
    state.escalation = Escalation(at=NOW, message_id="c2", urgency="queued", necessary=True)
    return state


def test_a_missed_label_exports_as_escalate_from_its_message() -> None:
    state = _state()
    assert label_for(state, running=False) == {"escalate": True, "urgency": "queued"}
    # The reviewer says it should have come at c1: the index among the exported (customer and bot) messages.
    missed = {"c1": "c1"}
    assert label_for(state, running=False, missed=missed) == {
        "escalate": True,
        "missed": True,
        "from_message": 2,
        "from_message_id": "c1",
    }
    # It wins over an escalation judged unnecessary, too.
    assert label_for(state, running=False, reviews={"c1:c2": False}, missed=missed)["from_message"] == 2
    # A message id not in the transcript keeps the id, without an index.
    assert label_for(state, running=False, missed={"c1": "gone"}) == {
        "escalate": True,
        "missed": True,
        "from_message_id": "gone",
    }
    line = transcript_line(state, "conversation-c1", "run-1", running=False, missed=missed)
    assert [m["message_id"] for m in line["messages"]] == ["c0", "b0", "c1", "c2"]
    # Customer messages carry the scores the classifier recorded; the bot's none.
    assert line["messages"][2]["signals"]["intents"] == ["billing_dispute"]
    assert line["messages"][2]["signals"]["probabilities"] == {"billing_dispute": 0.81}
    assert "signals" not in line["messages"][1]
    conv = ReplayConversation.model_validate(line)
    assert conv.label is not None and conv.label.from_message == 2
    # `baton policy tune` reads the same line with its recorded scores, and the engine decides on them.
    (scored,) = read_scored([json.dumps(line)], "export.jsonl")
    assert scored.messages[2].signals is not None and scored.messages[2].signals.probabilities
    decided = decide(load_policy("default"), scored)
    assert (decided.at_message, decided.trigger_ids) == (0, ["billing_dispute"])
    assert not evaluation.is_true_positive(decided.model_copy(update={"at_message": 3}))
    assert evaluation.is_true_positive(decided)


def _record(conversation_id: str, at: int | None, label: dict) -> dict:
    return {"conversation_id": conversation_id, "escalated": at is not None, "at_message": at, "label": label}


def test_replay_counts_an_escalation_after_the_named_message_as_a_miss() -> None:
    missed = {"escalate": True, "missed": True, "from_message": 2}
    records = [
        _record("on-time", 2, missed),
        _record("earlier", 0, missed),
        _record("late", 3, missed),
        _record("never", None, missed),
        _record("plain", 5, {"escalate": True}),  # an ordinary label names no message: any escalation counts
        _record("false", 1, {"escalate": False}),
    ]
    figures = evaluation.metrics(records)
    assert figures["confusion"] == {"tp": 3, "fp": 1, "fn": 2, "tn": 0}
    assert figures["late"] == 1
    assert "late: 1 missed-escalation labels escalated after the message they name (counted in fn)" in (
        evaluation_lines(figures)
    )
    assert [evaluation.is_true_positive(r) for r in records] == [True, True, False, False, True, False]
    # A policy change that makes the late one escalate in time is an improvement in a comparison.
    after = [*records[:2], _record("late", 2, missed), *records[3:]]
    comparison = evaluation.compare_records(records, after)
    late = next(c for c in comparison["changed"] if c["conversation_id"] == "late")
    assert late["change"] == ["escalated_earlier"] and late["outcome"] == "improved"
    assert comparison["after"]["confusion"]["fn"] == 1 and comparison["after"]["late"] == 0
