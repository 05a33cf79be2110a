"""The deterministic scorer: intents with negation and mention, frustration over a conversation."""

from __future__ import annotations

import pytest

from baton.contract.messages import Intent
from baton.domain.scoring import score

INTENT_CASES = [
    ("I want to talk to a human", {Intent.HUMAN_REQUEST}),
    ("Can I speak to someone please?", {Intent.HUMAN_REQUEST}),
    ("human please", {Intent.HUMAN_REQUEST}),
    ("agent!", {Intent.HUMAN_REQUEST}),
    ("Is there a real person I can talk to?", {Intent.HUMAN_REQUEST}),
    ("I don't want to wait, get me a human", {Intent.HUMAN_REQUEST}),
    ("connect me with a representative", {Intent.HUMAN_REQUEST}),
    ("Please put me through to an agent", {Intent.HUMAN_REQUEST}),
    ("Could you connect me with someone from billing?", {Intent.HUMAN_REQUEST}),
    ("Is the service down? Nothing is loading, get me a human", {Intent.HUMAN_REQUEST}),
    # negation and mention are not requests
    ("I don't need a human, just tell me how to reset my password", set()),
    ("does your product route chats to a human agent?", set()),
    ("Can your bot hand conversations to a person on my team?", set()),
    ("no need for an agent, I figured it out", set()),
    ("I'm going to sue you", {Intent.LEGAL_THREAT}),
    ("My lawyer will hear about this", {Intent.LEGAL_THREAT}),
    ("I'm not going to sue anyone, relax", set()),
    ("I want to kill myself", {Intent.SAFETY_OR_DISTRESS}),
    ("I don't feel safe, someone is threatening me", {Intent.SAFETY_OR_DISTRESS}),
    ("Please delete my personal data under GDPR", {Intent.DATA_DELETION}),
    ("I'm exercising my right to be forgotten", {Intent.DATA_DELETION}),
    ("Is your product GDPR compliant?", set()),
    ("I was charged twice, I want a refund", {Intent.BILLING_DISPUTE}),
    ("You refused my refund, I'm disputing the charge", {Intent.BILLING_DISPUTE}),
    ("Does your product support refunds for our customers?", set()),
    ("I want to cancel my subscription", {Intent.CANCELLATION}),
    ("I don't want to cancel my subscription, just pause it", set()),
    ("Thanks, that worked!", {Intent.RESOLVED}),
    ("great, problem solved", {Intent.RESOLVED}),
    ("Thanks but it still doesn't work", set()),
    ("This isn't helping", {Intent.NOT_HELPING}),
    ("that's not what I asked", {Intent.NOT_HELPING}),
    ("How do I reset my password?", set()),
]


@pytest.mark.parametrize(("text", "expected"), INTENT_CASES)
def test_intents(text: str, expected: set[Intent]) -> None:
    assert set(score(text).intents) == expected


def test_sentiment_sign() -> None:
    assert score("This is great, thank you so much!").sentiment > 0.3
    assert score("This is terrible and broken, I'm furious").sentiment < -0.5
    assert score("How do I export a report?").sentiment == 0
    assert score("it doesn't work").sentiment < 0


def test_frustration_rises_with_persistence_caps_punctuation_and_profanity() -> None:
    calm = score("The export is not loading")
    persistent = score("The export is still not loading, again")
    shouting = score("THE EXPORT IS STILL NOT LOADING!!!")
    swearing = score("the damn export is still not loading")
    assert calm.frustration < persistent.frustration < shouting.frustration
    assert swearing.frustration > persistent.frustration
    assert "shouting" in shouting.markers and "repeated_punctuation" in shouting.markers
    assert "profanity" in swearing.markers


def test_frustration_is_conversation_aware() -> None:
    first = score("How do I export a report to CSV?")
    repeated = score(
        "how can I export the report to csv",
        previous_customer_texts=["How do I export a report to CSV?"],
        previous_frustration=[first.frustration],
    )
    assert "repeated_message" in repeated.markers
    assert repeated.frustration > first.frustration
    carried = score("ok", previous_frustration=[0.8])
    assert carried.frustration >= 0.25


def test_resolution_caps_frustration() -> None:
    assert score("thanks, that fixed it", previous_frustration=[0.9]).frustration <= 0.1


def test_scores_are_bounded_and_deterministic() -> None:
    text = "WTF!!! STILL BROKEN AGAIN, useless useless useless, I hate this damn app!!!"
    a, b = score(text, ["still broken"], [1.0]), score(text, ["still broken"], [1.0])
    assert a == b
    assert -1 <= a.sentiment <= 1 and 0 <= a.frustration <= 1
    assert a.frustration == 1.0


def test_the_rules_as_a_classifier_compose_exactly_as_the_rules() -> None:
    from baton.classifier.rules import RuleScorer
    from baton.domain.scoring import compose

    scorer = RuleScorer()
    earlier = ["the export is broken", "still broken!!"]
    for text in ["I want to talk to a human", "this is useless, still broken", "thanks, that fixed it", "hello"]:
        composed = compose(scorer.score(text), text, earlier, [0.2, 0.5])
        assert composed.model_copy(update={"model_version": None}) == score(text, earlier, [0.2, 0.5])
        assert composed.model_version == scorer.version
