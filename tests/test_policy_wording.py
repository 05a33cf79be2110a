"""Customer-facing wording from policy templates."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from baton.contract.messages import TriggerHit
from baton.policies import PolicyError, load_policy, load_policy_text
from baton.policies.wording import async_escalation_text, escalation_text, format_duration, waiting_text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (20, "about 1 minute"),
        (150, "about 2 minutes"),
        (3600, "about 1 hour"),
        (8 * 3600, "about 8 hours"),
        (3 * 86400, "about 3 days"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


def test_escalation_text_says_why_how_long_and_no_repeating() -> None:
    policy = load_policy("default")
    hits = [
        TriggerHit(id="billing_dispute", category="contextual"),
        TriggerHit(id="explicit_human_request", category="behavioral"),
    ]
    text = escalation_text(policy, "immediate", hits, timedelta(minutes=4))
    assert "as you asked to speak with a person" in text  # the immediate trigger's reason wins
    assert "about 4 minutes" in text and "won't need to repeat yourself" in text
    queued = escalation_text(
        policy, "queued", [TriggerHit(id="repeated_question", category="behavioral")], timedelta(minutes=12)
    )
    assert "so a person can help" in queued and "about 12 minutes" in queued
    assert "reply within about 8 hours" in async_escalation_text(policy, "queued", hits[:1])
    assert "number 3 in line" in waiting_text(policy, "wait_update", 3, timedelta(minutes=5))


def test_unknown_placeholder_is_an_error_naming_the_template() -> None:
    text = (
        Path("policies/default.yaml")
        .read_text()
        .replace("expected wait: {wait}.\n  wait_update", "{eta}.\n  wait_update")
    )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.yaml")
    assert "templates: Value error, waiting_status: unknown placeholder {eta}; allowed: position, wait" in str(
        caught.value
    )
