"""Replay transcripts for the engine-mode tests and benchmark: the planted helpdesk conversations of
tests/past_conversations.py (nine failure modes and healthy noise), turned into `baton replay` lines with
accounts of every tier and lifecycle, plus one-message conversations written in many ways."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from tests.past_conversations import generate

TIERS = ("enterprise", "mid_market", "smb", "self_serve", None)
ONE_LINERS = (
    "How do I add a teammate?",
    "I want to talk to a human",
    "my lawyer will hear about this",
    "I was charged twice, refund me now",
    "Please delete all my data under GDPR",
    "this is useless, waste of time",
    "can you call me back? 555 0100",
    "Where do I find my invoices?",
    "I want to cancel my subscription",
    "thanks, that fixed it",
    "I'm panicking, payroll failed and my staff can't pay rent",
    "Can you explain the line items on my invoice?",
)


OPENERS = ("", "hi, ", "Hello team. ", "hey ", "Good morning, ", "ok so ", "URGENT: ", "pls ")
CLOSERS = ("", " thanks", " asap", "!!", " (workspace {n})", " - order #{n}", " ticket {n}", "?")


def _written(rng: random.Random, n: int) -> str:
    """One of the one-liners as customers write it: an opener, the text, a closer with their own reference,
    so that no two messages are the same string (as in real traffic: nothing is read from a cache)."""
    closer = rng.choice(CLOSERS[4:7]).format(n=10_000 + n) + rng.choice(CLOSERS[:4] + CLOSERS[7:])
    return f"{rng.choice(OPENERS)}{rng.choice(ONE_LINERS)}{closer}"


def _customer(rng: random.Random, customer_id: str, started: datetime) -> dict[str, object]:
    customer: dict[str, object] = {"id": customer_id}
    tier = rng.choice(TIERS)
    if tier:
        customer["tier"] = tier
        customer["mrr"] = rng.choice([0, 49, 450, 2500, 12000])
    if rng.random() < 0.4:
        customer["renewal_date"] = (started + timedelta(days=rng.randint(1, 120))).date().isoformat()
    if rng.random() < 0.3:
        customer["account_created_at"] = (started - timedelta(days=rng.randint(1, 400))).date().isoformat()
    return customer


def corpus(seed: int = 7, limit: int | None = None, one_liners: int = 0) -> list[str]:
    """Replay JSONL lines: the planted conversations (all of them, or the first `limit`), then `one_liners`
    one-message conversations."""
    rng = random.Random(seed)
    lines = []
    planted = generate()
    for p in planted[:limit] if limit is not None else planted:
        line = p.line
        started = datetime.fromisoformat(line["messages"][0]["time"])
        lines.append(
            json.dumps(
                {
                    "conversation_id": line["conversation_id"],
                    "customer": _customer(rng, line["customer_id"], started),
                    "channel": line["channel"],
                    "started_at": line["messages"][0]["time"],
                    "messages": [{"role": m["role"], "text": m["text"], "at": m["time"]} for m in line["messages"]],
                }
            )
        )
    base = datetime.fromisoformat("2026-10-01T09:00:00+00:00")
    for i in range(one_liners):
        started = base + timedelta(minutes=7 * i)
        lines.append(
            json.dumps(
                {
                    "conversation_id": f"one-{i:05d}",
                    "customer": _customer(rng, f"cust-{i % 500:04d}", started),
                    "started_at": started.isoformat(),
                    "messages": [{"role": "customer", "text": _written(rng, i)}],
                }
            )
        )
    return lines
