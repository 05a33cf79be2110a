"""The PII redactor (domain/redaction.py): each kind is replaced by its placeholder; near-misses stay."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from baton.domain.redaction import iban_valid, luhn_valid, redact
from tests.test_store import db_url, postgres_prefix  # noqa: F401  (fixtures: SQLite, and PostgreSQL when set)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+billing@example.co.uk please", "write to [email] please"),
        ("Card 4111 1111 1111 1111 was charged twice", "Card [card] was charged twice"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("amex 378282246310005.", "amex [card]."),
        ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN [iban] thanks"),
        ("to DE89370400440532013000", "to [iban]"),
        ("my SSN is 123-45-6789.", "my SSN is [ssn]."),
        ("call me on +44 20 7946 0958", "call me on [phone]"),
        ("call me on (415) 555-0132 today", "call me on [phone] today"),
        ("or 415-555-0132", "or [phone]"),
        ("UK mobile 07700 900123", "UK mobile [phone]"),
        (
            "I'm jo@x.io, card 5555555555554444, IBAN FR1420041010050500013M02606, phone +1 415 555 0132",
            "I'm [email], card [card], IBAN [iban], phone [phone]",
        ),
    ],
)
def test_each_kind_of_personal_data_is_replaced_by_its_placeholder(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567812345678 never arrived",  # 16 digits that fail Luhn: an order number
        "order 1234 5678 9012 3456",  # the same, grouped like a card
        "IBAN GB82 WEST 1234 5698 7654 33",  # one check digit off: fails mod-97
        "GB82WEST123456987654",  # too short for a GB IBAN
        "ssn 000-12-3456 and 666-12-3456",  # area numbers the SSA never issues
        "on 2024-01-15 at 10:30, version 1.2.3",
        "refund $5,000 for ticket #48213, amount 1,234.56",
        "ip 192.168.1.1, years 2023-2024, order 12345678",
        "an @mention and user@localhost",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_checksums() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("41111x")
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("gb82west12345698765432")
    assert not iban_valid("GB82WEST12345698765431")
    assert not iban_valid("ZZ82WEST12345698765432")


def test_redaction_is_idempotent() -> None:
    once = redact("jo@x.io 4111111111111111 GB82WEST12345698765432 123-45-6789 +44 20 7946 0958")
    assert redact(once) == once
    assert once == "[email] [card] [iban] [ssn] [phone]"


# --- Where it is applied -------------------------------------------------------------------------

PII = "I'm jo@x.io, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, call +44 20 7946 0958"
KEPT = "order 1234 5678 9012 3456"


def _note_request(redact_flag: bool | None = None) -> Any:
    from datetime import UTC, datetime

    from baton.contract.messages import NoteRequest, TranscriptEntry

    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    entry = TranscriptEntry(message_id="m1", role="customer", text=f"{PII}; {KEPT}", at=at)
    fields = {} if redact_flag is None else {"redact": redact_flag}
    return NoteRequest(conversation_id="c1", channel="chat", transcript=[entry], **fields)


def test_the_handoff_note_prompt_is_redacted_by_default_and_as_the_policy_says() -> None:
    from baton.activities.handoff import build_messages

    prompt = build_messages(_note_request())[1]["content"]
    assert "jo@x.io" not in prompt and "4111" not in prompt and "GB82" not in prompt and "7946" not in prompt
    assert "[email]" in prompt and "[card]" in prompt and "[iban]" in prompt and "[phone]" in prompt
    assert KEPT in prompt  # the order number fails Luhn
    assert "jo@x.io" in build_messages(_note_request(redact_flag=False))[1]["content"]


def test_the_judge_prompt_is_redacted_by_default_and_as_the_policy_says() -> None:
    from baton.activities.judge import build_messages
    from baton.contract.scoring import JudgeRequest, MessageScores

    scores = MessageScores(
        intents=[], probabilities={}, frustration=0.1, sentiment=0.0, topic="other", model_version="t"
    )
    request = JudgeRequest(conversation_id="c1", message_id="m1", text=f"{PII}; {KEPT}", scores=scores)
    prompt = build_messages(request)[1]["content"]
    assert "jo@x.io" not in prompt and "4111" not in prompt and "[card]" in prompt and KEPT in prompt
    assert "jo@x.io" in build_messages(request.model_copy(update={"redact": False}))[1]["content"]


def test_the_policy_field_has_defaults_and_names_a_bad_value() -> None:
    from baton.policies import PolicyError, load_policy

    policy = load_policy("policies/default.yaml")
    assert (policy.redaction.llm, policy.redaction.helpdesk, policy.redaction.webhooks) == (True, False, False)
    text = Path("policies/default.yaml").read_text().replace("  helpdesk: false", "  helpdesk: sometimes")
    bad = Path(tempfile.mkdtemp()) / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(bad)
    assert any("redaction.helpdesk" in problem for problem in err.value.problems)


def test_policy_show_prints_where_redaction_applies() -> None:
    from baton.policies import load_policy
    from baton.policies.matrix import render_matrix

    shown = render_matrix(load_policy("policies/default.yaml"))
    assert "Redaction" in shown and "in the LLM; as sent to helpdesk tickets, on-call pages" in shown


def test_tickets_and_pages_are_redacted_whole() -> None:
    from baton.contract.messages import HandoffNote, HelpdeskTicket, PageRequest
    from baton.domain.redaction import redact_page, redact_ticket

    note = HandoffNote(
        summary=f"Customer says {PII}",
        customer_wants="refund to GB82WEST12345698765432",
        sentiment_trajectory="flat",
        account="-",
        recommended_actions=["email jo@x.io"],
        suggested_first_reply="Hi, we will call +44 20 7946 0958",
    )
    ticket = HelpdeskTicket(
        idempotency_key="k",
        conversation_id="c1",
        customer_id="jo@x.io",
        channel="email",
        subject=note.summary,
        priority="normal",
        urgency="queued",
        reply_within_seconds=60,
        note=note,
        transcript=_note_request().transcript,
    )
    body = redact_ticket(ticket).model_dump_json()
    for raw in ('jo@x.io"', "4111", "GB82", "7946"):
        assert raw not in body.replace('"customer_id":"jo@x.io"', "")
    assert KEPT in body
    page = PageRequest(dedup_key="d", summary="Customer jo@x.io escalated 3 times", conversation_id="c1",
                       details={"customer_id": "jo@x.io"})  # fmt: skip
    assert redact_page(page).summary == "Customer [email] escalated 3 times"
    assert redact_page(page).details == {"customer_id": "[email]"}


def test_hostile_text_is_redacted_without_runaway_backtracking() -> None:
    """Each pattern is linear on long runs of the characters it matches (8,000 characters, the message limit)."""
    import time

    cases = ["1-" * 4000, "1 " * 4000, "1" * 8000, "a@" + "b." * 3999, "+1 " * 2666, "GB82 " + "AB12 " * 1599,
             "(12) " * 1600, "a" * 8000, ("x" * 50 + "@") * 150]  # fmt: skip
    started = time.perf_counter()
    for text in cases:
        redact(text[:8000])
    assert time.perf_counter() - started < 3  # about 50 ms on a loaded machine; quadratic would be minutes


async def test_the_store_keeps_free_text_redacted(db_url: str) -> None:  # noqa: F811
    """No transcript column exists; the free text the store does hold is written without personal data."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from baton.contract.records import EscalationRecord, IncidentRecord, ReviewLabelRecord
    from baton.store import records
    from baton.store.database import create_engine, migrate_async, session_factory
    from baton.store.models import Incident, MissedLabel, ReviewLabel

    await migrate_async(db_url)
    now = datetime.now(UTC)
    quoted = "customer jo@x.io paid with 4111 1111 1111 1111, call +44 20 7946 0958; order 1234 5678 9012 3456"
    engine = create_engine(db_url)
    try:
        async with session_factory(engine).begin() as session:
            await records.record_incident(
                session, IncidentRecord(id="ops:1", description=quoted, started_at=now, declared_by="lead")
            )
            await records.record_escalation(
                session,
                EscalationRecord(
                    conversation_id="c1",
                    message_id="m1",
                    customer_id="cust-1",
                    channel="chat",
                    escalated_at=now,
                    urgency="queued",
                    messages_to_escalation=1,
                ),
            )
            await records.record_review_label(
                session,
                ReviewLabelRecord(escalation_id="c1:m1", reviewer="rev", necessary=False, labelled_at=now, note=quoted),
            )
            await records.record_missed_label(
                session,
                records.MissedLabelRecord(
                    conversation_id="c1", message_id="m1", reviewer="rev", labelled_at=now, note=quoted
                ),
            )
        async with session_factory(engine)() as session:
            stored = [
                (await session.scalar(select(Incident.description))),
                (await session.scalar(select(ReviewLabel.note))),
                (await session.scalar(select(MissedLabel.note))),
            ]
    finally:
        await engine.dispose()
    expected = "customer [email] paid with [card], call [phone]; order 1234 5678 9012 3456"
    assert stored == [expected] * 3
