"""Every trigger and segment rule of the default policy, through the pure engine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from baton.contract.messages import (
    ConversationStart,
    ConversationState,
    CoolingStatus,
    CustomerContext,
    CustomerFacts,
    Decision,
    Escalation,
    Phase,
    Signals,
    TranscriptEntry,
)
from baton.domain.scoring import score
from baton.policies import Policy, evaluate, load_policy
from baton.policies.engine import classify, effective_threshold, standing
from tests.samples import DISTINCT_QUESTIONS

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MID = CustomerFacts(tier="mid_market", mrr=1500, account_created_at=date(2023, 1, 1), renewal_date=date(2027, 9, 1))
ENTERPRISE = CustomerFacts(
    tier="enterprise", mrr=20000, account_created_at=date(2022, 1, 1), renewal_date=date(2027, 9, 1)
)
SMB = CustomerFacts(tier="smb", mrr=49, account_created_at=date(2023, 1, 1), renewal_date=date(2027, 9, 1))
FREE = CustomerFacts(tier="free", mrr=0, account_created_at=date(2023, 1, 1))


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("policies/default.yaml")


def converse(
    policy: Policy, turns: list[tuple[str, str]], facts: CustomerFacts = MID, now: datetime = NOW
) -> list[Decision]:
    """Run a conversation through the scorer and the engine; one decision per customer turn."""
    state = ConversationState(start=ConversationStart(conversation_id="t", customer_id="c"))
    context = CustomerContext(customer_id="c", facts=facts)
    decisions = []
    for i, (role, text) in enumerate(turns):
        entry = TranscriptEntry(message_id=f"m{i}", role=role, text=text, at=now)
        if role == "customer":
            earlier = [m for m in state.transcript if m.role == "customer"]
            entry.signals = score(text, [m.text for m in earlier], [m.signals.frustration for m in earlier])
        state.transcript.append(entry)
        if role != "customer":
            continue
        decision = evaluate(policy, state, context, now, f"m{i}")
        if decision.action == "escalate" and state.phase == Phase.BOT:
            state.phase = Phase.ESCALATED
            state.escalation = Escalation(at=now, message_id=f"m{i}", urgency=decision.urgency)
        decisions.append(decision)
    return decisions


def fired(decision: Decision) -> set[str]:
    return {t.id for t in decision.triggers}


def first_escalation(decisions: list[Decision]) -> int | None:
    return next((i for i, d in enumerate(decisions) if d.action == "escalate"), None)


def customer(*texts: str) -> list[tuple[str, str]]:
    return [("customer", t) for t in texts]


def test_plain_question_continues(policy: Policy) -> None:
    [d] = converse(policy, customer("How do I add a teammate?"))
    assert d.action == "continue" and d.urgency is None and d.triggers == [] and d.customer_text is None
    assert d.signals is not None and d.segment == "mid_market"


@pytest.mark.parametrize(
    ("text", "trigger", "urgency", "category"),
    [
        ("I want to talk to a human", "explicit_human_request", "immediate", "behavioral"),
        ("I'm calling my lawyer about this", "legal_threat", "immediate", "contextual"),
        ("I want to end my life", "severe_distress", "immediate", "sentiment"),
        ("Please delete all my personal data, GDPR request", "data_deletion_request", "queued", "contextual"),
        ("I was double charged and want my money back", "billing_dispute", "queued", "contextual"),
        ("this is useless, you are not helping", "bot_not_helping", "queued", "behavioral"),
        ("this shit doesn't work", "profanity", "queued", "sentiment"),
    ],
)
def test_single_message_triggers(policy: Policy, text: str, trigger: str, urgency: str, category: str) -> None:
    [d] = converse(policy, customer(text))
    assert d.action == "escalate"
    assert trigger in fired(d)
    assert d.urgency == urgency
    hit = next(t for t in d.triggers if t.id == trigger)
    assert hit.category == category and hit.detail
    assert d.phase == Phase.ESCALATED


@pytest.mark.parametrize(
    "text",
    [
        "I don't need a human, just tell me how to reset my password",
        "does your product route chats to a human agent?",
        "Is your product GDPR compliant?",
    ],
)
def test_negations_and_mentions_do_not_escalate(policy: Policy, text: str) -> None:
    [d] = converse(policy, customer(text))
    assert d.action == "continue", d.triggers


def test_immediate_wins_over_queued(policy: Policy) -> None:
    [d] = converse(policy, customer("I was charged twice, get me a human now"))
    assert {"billing_dispute", "explicit_human_request"} <= fired(d)
    assert d.urgency == "immediate"


def test_repeated_question_fires_on_third_similar_asking(policy: Policy) -> None:
    turns = [
        ("customer", "How do I export my reports to CSV?"),
        ("bot", "Open Reports and click Download."),
        ("customer", "ok but how can I export reports as CSV"),
        ("bot", "You can find Download under the Reports menu."),
        ("customer", "export reports to csv, how?"),
    ]
    decisions = converse(policy, turns)
    assert [d.action for d in decisions] == ["continue", "continue", "escalate"]
    assert "repeated_question" in fired(decisions[2])
    assert decisions[2].urgency == "queued"


def test_different_questions_are_not_repeats(policy: Policy) -> None:
    decisions = converse(
        policy,
        customer("How do I export reports?", "How do I invite a teammate?", "Where do I change my billing address?"),
    )
    assert all(d.action == "continue" for d in decisions)


def test_bot_loop(policy: Policy) -> None:
    turns = [
        ("customer", "My sync is failing"),
        ("bot", "Please sign out and sign in again to refresh the sync."),
        ("customer", "I did that"),
        ("bot", "Please sign out and sign in again to refresh your sync."),
        ("customer", "and?"),
    ]
    decisions = converse(policy, turns)
    assert decisions[1].action == "continue"
    assert decisions[2].action == "escalate" and "bot_loop" in fired(decisions[2])


def test_unresolved_conversation_counts_since_resolution(policy: Policy) -> None:
    texts = DISTINCT_QUESTIONS[:10]
    decisions = converse(policy, customer(*texts))
    assert first_escalation(decisions) == 7  # 8th message, mid-market threshold 8
    assert "unresolved_conversation" in fired(decisions[7])
    resolved = customer(*texts[:5], "thanks, that worked!", *texts[5:9])
    decisions = converse(policy, resolved)
    assert all(d.action == "continue" for d in decisions)


def test_frustration_trend(policy: Policy) -> None:
    decisions = converse(
        policy,
        customer("the upload is broken", "it's STILL broken!!", "STILL BROKEN AGAIN, this is ridiculous!!!"),
    )
    index = first_escalation(decisions)
    assert index is not None and "frustration_trend" in fired(decisions[index])


def test_high_value_friction_only_for_high_value(policy: Policy) -> None:
    text = "the dashboard is broken and it's frustrating"
    [enterprise] = converse(policy, customer(text), ENTERPRISE)
    [mid] = converse(policy, customer(text), MID)
    assert "high_value_friction" in fired(enterprise)
    assert mid.action == "continue"


def test_at_risk_account(policy: Policy) -> None:
    at_risk = MID.model_copy(update={"health": 25})
    [d] = converse(policy, customer("I want to cancel my subscription"), at_risk)
    assert "at_risk_account" in fired(d)
    [healthy] = converse(policy, customer("I want to cancel my subscription"), MID)
    assert healthy.action == "continue"
    flagged = MID.model_copy(update={"lifecycle_stage": "churned"})
    [upset] = converse(policy, customer("this product is terrible and broken"), flagged)
    assert "at_risk_account" in fired(upset)


def test_segments_classify(policy: Policy) -> None:
    assert classify(policy, ENTERPRISE).id == "enterprise"
    assert classify(policy, CustomerFacts(mrr=8000)).id == "enterprise"
    assert classify(policy, MID).id == "mid_market"
    assert classify(policy, SMB).id == "smb"
    assert classify(policy, FREE).id == "self_serve"
    assert classify(policy, CustomerFacts()).id == policy.default_segment


def test_enterprise_escalates_sooner_and_smb_later(policy: Policy) -> None:
    texts = DISTINCT_QUESTIONS
    index = {
        name: first_escalation(converse(policy, customer(*texts), facts))
        for name, facts in [("enterprise", ENTERPRISE), ("mid", MID), ("smb", SMB)]
    }
    assert index == {"enterprise": 5, "mid": 7, "smb": 10}


def test_self_serve_reserves_escalation_for_high_priority(policy: Policy) -> None:
    texts = DISTINCT_QUESTIONS
    assert all(d.action == "continue" for d in converse(policy, customer(*texts), FREE))
    [swear] = converse(policy, customer("this shit is broken"), FREE)
    assert swear.action == "continue"
    [human] = converse(policy, customer("I want to speak to a person"), FREE)
    assert human.action == "escalate" and human.urgency == "immediate"
    [refund] = converse(policy, customer("I want a refund for the double charge"), FREE)
    assert refund.action == "escalate"


def test_new_account_lowers_thresholds(policy: Policy) -> None:
    new = MID.model_copy(update={"account_created_at": NOW.date() - timedelta(days=10)})
    stand = standing(policy, new, NOW.date())
    assert stand.factor == pytest.approx(0.8)
    old = standing(policy, MID, NOW.date())
    assert old.factor == pytest.approx(1.0)
    trigger = policy.trigger("unresolved_conversation")
    assert effective_threshold(trigger, stand.factor) == 6 < effective_threshold(trigger, old.factor)


def test_renewal_window_is_evaluated_at_now(policy: Policy) -> None:
    facts = MID.model_copy(update={"renewal_date": date(2027, 1, 15)})
    trigger = policy.trigger("unresolved_conversation")
    before = standing(policy, facts, date(2026, 11, 1))  # 75 days out: outside the 60-day window
    inside = standing(policy, facts, date(2026, 11, 20))  # 56 days out
    assert effective_threshold(trigger, before.factor) == 8
    assert effective_threshold(trigger, inside.factor) == 6
    after = standing(policy, facts, date(2027, 1, 16))
    assert after.factor == pytest.approx(1.0)


def test_both_lifecycle_rules_multiply(policy: Policy) -> None:
    facts = ENTERPRISE.model_copy(update={"account_created_at": date(2026, 10, 20), "renewal_date": date(2026, 12, 1)})
    assert standing(policy, facts, NOW.date()).factor == pytest.approx(0.7 * 0.8 * 0.8)


def test_after_escalation_messages_stay_with_humans(policy: Policy) -> None:
    decisions = converse(policy, customer("I want my money back for the double charge", "hello?", "get me a human NOW"))
    assert decisions[0].urgency == "queued"
    assert decisions[1].action == "escalate" and decisions[1].phase == Phase.ESCALATED
    assert decisions[1].urgency == "queued" and decisions[1].triggers == []
    assert decisions[2].urgency == "immediate"  # an immediate trigger raises a queued escalation


def test_engine_is_pure(policy: Policy) -> None:
    state = ConversationState(
        start=ConversationStart(conversation_id="t", customer_id="c"),
        transcript=[
            TranscriptEntry(
                message_id="m0",
                role="customer",
                text="hi",
                at=NOW,
                signals=Signals(sentiment=0, frustration=0.9, intents=[], markers=["profanity"]),
            )
        ],
    )
    before = state.model_dump()
    context = CustomerContext(customer_id="c", facts=MID)
    assert evaluate(policy, state, context, NOW, "m0") == evaluate(policy, state, context, NOW, "m0")
    assert state.model_dump() == before


def test_returning_customer_within_cooling_escalates_sooner(policy: Policy) -> None:
    texts = DISTINCT_QUESTIONS[:8]
    state = ConversationState(start=ConversationStart(conversation_id="t", customer_id="c"))
    for i, text in enumerate(texts):
        entry = TranscriptEntry(message_id=f"m{i}", role="customer", text=text, at=NOW)
        entry.signals = score(text)
        state.transcript.append(entry)
    cooling = CoolingStatus(customer_id="c", cooling_until=NOW + timedelta(hours=10), escalations_in_window=1)
    returning = CustomerContext(customer_id="c", facts=MID, cooling=cooling)
    expired = CustomerContext(customer_id="c", facts=MID, cooling=cooling.model_copy(update={"cooling_until": NOW}))
    state.transcript = state.transcript[:5]
    # 5 unresolved messages: under the standard 8, over 8 x 0.6 = 5 while cooling.
    assert evaluate(policy, state, returning, NOW, "m4").action == "escalate"
    assert evaluate(policy, state, expired, NOW, "m4").action == "continue"
