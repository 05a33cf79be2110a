"""A seeded set of past helpdesk conversations with planted failure modes, for `baton audit`'s tests.

Each conversation is a line of the helpdesk JSONL shape (docs/audit.md). Most conversations go well (the
bot answers in two or three turns, the customer thanks it, CSAT 4-5); a few of those carry noise (a lone
low rating, a customer who leaves after one message) spread thin across topics. On top of them, nine
failure modes are planted, each with its own wording, its own outcome and a fixed count:

| mode | what happens | the signal |
|---|---|---|
| billing_loop | a disputed charge; the bot repeats one answer for 8-12 turns (1 in 16 abandoned) | many turns |
| password_hand | a password reset or login failure; an agent takes over, the bot never escalated | hand escalation |
| shipping_low_csat | a late parcel; the bot answers with tracking boilerplate; CSAT 1-2 | low CSAT |
| cancellation_abandoned | a cancellation; the bot offers discounts; the customer leaves | abandonment |
| legal_threat | a customer threatens legal action; an agent takes over by hand | hand escalation |
| deletion_hand | a GDPR deletion request; an agent takes over by hand | hand escalation |
| outage_low_csat | the service is down for the customer; angry messages; CSAT 1 | low CSAT |
| human_ignored | the customer asks for a person again and again; the bot carries on; they leave | abandonment |
| export_bug_loop | an export that keeps failing; the customer asks the same thing for 7-10 turns | many turns |

`generate()` returns the lines and, for every conversation, the mode it was planted with ("healthy" or
"noise" otherwise), so that a test can check which scenario type each planted conversation lands in.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261001
START = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)

PLANTED_COUNTS: dict[str, int] = {
    "billing_loop": 48,
    "password_hand": 44,
    "shipping_low_csat": 42,
    "cancellation_abandoned": 38,
    "legal_threat": 24,
    "deletion_hand": 26,
    "outage_low_csat": 36,
    "human_ignored": 32,
    "export_bug_loop": 34,
}
HEALTHY = 290
NOISE = 10
# Real modes are not clean: one billing loop in 16 ends with the customer leaving instead, so its
# conversations count as abandoned (too few to be a scenario type of their own).
DRIFT_EVERY = 16
DRIFTED = {"billing_loop": PLANTED_COUNTS["billing_loop"] // DRIFT_EVERY}

PRODUCTS = ["Pro plan", "Team plan", "Starter plan", "annual plan", "Business plan"]
AMOUNTS = ["$49", "$99", "$120", "$240", "$18.50", "$310"]
MONTHS = ["August", "September", "October"]
ITEMS = ["standing desk", "monitor arm", "office chair", "keyboard", "desk lamp", "headset"]


@dataclass
class Planted:
    line: dict[str, Any]
    mode: str


def _pick(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


def _fill(rng: random.Random, text: str) -> str:
    return text.format(
        product=_pick(rng, PRODUCTS),
        amount=_pick(rng, AMOUNTS),
        month=_pick(rng, MONTHS),
        item=_pick(rng, ITEMS),
        order=f"#{rng.randrange(10000, 99999)}",
        days=rng.randrange(6, 21),
    )


# --- the planted modes: customer openings, follow-ups and the bot's answers --------------------------------

BILLING_OPEN = [
    "I was charged twice for the {product} in {month}, I want a refund of {amount}",
    "There is a charge of {amount} on my card I never authorised, please refund it",
    "You billed me {amount} after I downgraded, that charge is wrong and I dispute it",
    "I see a double charge of {amount} for {month}, refund the duplicate payment",
]
BILLING_FOLLOW = [
    "That does not explain the duplicate charge of {amount}",
    "I still want my {amount} back, the charge is wrong",
    "Again: I was billed twice, refund the second payment",
    "You keep saying the same thing, where is my refund for {amount}",
    "The refund policy is not the point, I was overcharged",
    "So will you refund the {amount} or not",
]
BILLING_BOT = (
    "Refunds are processed according to our refund policy. You can review your invoices under Settings > Billing."
)

PASSWORD_OPEN = [
    "The password reset email never arrives",
    "I reset my password but the new one is rejected at login",
    "My password reset link says it has expired every time",
    "I can't sign in, the reset password page loops back to login",
    "The verification code for my password reset never comes",
]
PASSWORD_FOLLOW = [
    "I checked spam, there is no reset email",
    "I tried the reset link twice, still locked out of my account",
    "The login page keeps saying invalid password",
    "It still will not let me sign in",
]
PASSWORD_BOT = [
    "You can reset your password from the login page with 'Forgot password'.",
    "Please check your spam folder for the reset email.",
    "Make sure you use the most recent reset link we sent.",
]

SHIPPING_OPEN = [
    "My order {order} was supposed to arrive {days} days ago",
    "Where is my {item}? Order {order} still shows in transit",
    "The tracking for order {order} has not moved in {days} days",
    "My parcel with the {item} is late, order {order}",
]
SHIPPING_FOLLOW = [
    "The tracking page says nothing new",
    "So when will the {item} actually be delivered",
    "It has been {days} days, the delivery date keeps moving",
]
SHIPPING_BOT = [
    "Your order is on its way. You can follow it with the tracking link in your confirmation email.",
    "Deliveries can take up to 10 business days. The carrier updates tracking daily.",
]

CANCEL_OPEN = [
    "I want to cancel my {product}",
    "Please cancel my subscription at the end of this month",
    "How do I cancel my {product}? I don't need it any more",
    "Cancel my account subscription please, we are moving to another tool",
]
CANCEL_FOLLOW = [
    "No thanks, I just want to cancel",
    "I am not interested in a discount, cancel it",
    "Just tell me how to cancel the subscription",
]
CANCEL_BOT = [
    "Before you go: we can offer you 30% off the next three months of your plan.",
    "Did you know the annual plan saves two months? I can switch you now.",
    "Many teams pause instead of cancelling. Would a pause work for you?",
]

LEGAL_OPEN = [
    "If this is not fixed today I will sue your company",
    "My lawyer will be in touch about the money you took",
    "I am filing a complaint with the consumer protection authority and taking legal action",
    "This is a breach of contract and I am taking you to court",
]
LEGAL_FOLLOW = [
    "I have already contacted my attorney",
    "You will hear from my lawyer",
]
LEGAL_BOT = ["I understand this is frustrating. Could you tell me more about the issue?"]

DELETION_OPEN = [
    "Please delete all my personal data under GDPR",
    "I request erasure of my account and all the data you hold on me",
    "Under the GDPR I want my personal information deleted",
    "Delete my data, I am exercising my right to be forgotten",
]
DELETION_FOLLOW = [
    "I don't want to do it myself, delete my personal data",
    "Please confirm when all my data has been erased",
]
DELETION_BOT = ["You can delete your workspace from Settings > Workspace > Delete."]

OUTAGE_OPEN = [
    "Your dashboard has been down for an hour and I'm losing money, this is ridiculous",
    "Everything returns 500 errors, the whole app is broken again, unacceptable",
    "The service is down AGAIN, nothing loads, fix it now",
    "Your platform is completely broken, none of my pages load and customers are furious",
]
OUTAGE_FOLLOW = [
    "This is the third outage this month, absolutely terrible",
    "Still down. I am furious",
    "Nothing works and you give me a status page link? Terrible service",
]
OUTAGE_BOT = ["You can check our status page for live updates on incidents."]

HUMAN_OPEN = [
    "Can I speak to a real person please",
    "I want to talk to a human agent",
    "Get me a human, not a bot",
    "Please connect me with someone from your support team",
]
HUMAN_TOPICS = [
    "My invoice address is wrong on the last invoice",
    "The mobile app shows a blank screen after the update",
    "I need to change the owner of our workspace",
]
HUMAN_BOT = [
    "I can help with most questions. What can I do for you?",
    "Could you describe your issue so I can help?",
    "I'm here to help! Please tell me more.",
]

EXPORT_OPEN = [
    "The CSV export of my reports fails with an error",
    "Exporting my dashboard to CSV gives an empty file",
    "When I export reports to CSV the download never starts",
]
EXPORT_FOLLOW = [
    "The CSV export still fails",
    "Why does the export to CSV fail?",
    "I tried again and the CSV export fails again",
    "The export gives an empty CSV file again",
    "Still no CSV file from the export",
]
EXPORT_BOT = [
    "Go to Reports, choose the report and click Export > CSV.",
    "Large exports can take a few minutes. Please try again later.",
    "Please try another browser and clear your cache.",
    "Exports are limited to 50,000 rows. Try filtering your report.",
    "Check that pop-ups are allowed for our site in your browser settings.",
    "Scheduled exports arrive by email; you can set one up under Reports > Schedule.",
    "Make sure the report has at least one column selected.",
    "You can also use the API endpoint /v1/reports to download data.",
    "Try exporting a shorter date range first.",
    "Our help centre has a guide called Exporting your data.",
]

# --- healthy conversations: quick answers the customer thanks the bot for -----------------------------------

HEALTHY_QUESTIONS = [
    ("How do I download last month's invoice?", "Invoices are under Settings > Billing > Invoices."),
    ("Can I change the card you charge?", "Yes: Settings > Billing > Payment method."),
    ("How do I add a teammate to my workspace?", "Invite them from Settings > Members."),
    ("Which browsers do you support?", "The latest Chrome, Firefox, Safari and Edge."),
    ("Can I schedule a weekly report email?", "Yes: open the report and choose Schedule."),
    ("How do I change my email address?", "Go to Profile > Email and confirm the new address."),
    ("Where can I track my order?", "Use the tracking link in your confirmation email."),
    ("Do you ship to Canada?", "Yes, we ship to Canada in 5-8 business days."),
    ("How do I turn on two-factor authentication?", "Profile > Security > Two-factor authentication."),
    ("Is there a dark mode?", "Yes: Profile > Appearance > Dark."),
    ("How do I rename a dashboard?", "Click the dashboard's title and type the new name."),
    ("What file types can I upload?", "CSV, XLSX and JSON files up to 100 MB."),
]
THANKS = ["Thanks, that worked!", "Perfect, thank you", "Great, that solved it", "Got it, thanks for the help"]


def _conversation(
    rng: random.Random,
    number: int,
    turns: list[tuple[str, str]],
    *,
    csat: int | None,
    agent_took_over: bool = False,
    abandoned: bool = False,
) -> dict[str, Any]:
    at = START + timedelta(minutes=37 * number + rng.randrange(30))
    messages = []
    for role, text in turns:
        messages.append({"role": role, "text": text, "time": at.isoformat().replace("+00:00", "Z")})
        at += timedelta(seconds=rng.randrange(15, 120))
    line: dict[str, Any] = {
        "conversation_id": f"hd-{number:05d}",
        "customer_id": f"cust-{rng.randrange(1, 400):04d}",
        "channel": "chat",
        "messages": messages,
        "csat": csat,
        "agent_took_over": agent_took_over,
        "abandoned": abandoned,
    }
    return line


def _dialogue(
    rng: random.Random, opening: list[str], follow: list[str], bot: list[str] | str, customer_turns: int
) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    follow_ups = list(follow)
    rng.shuffle(follow_ups)
    for i in range(customer_turns):
        text = _pick(rng, opening) if i == 0 else follow_ups[(i - 1) % len(follow_ups)]
        turns.append(("customer", _fill(rng, text)))
        turns.append(("bot", bot if isinstance(bot, str) else bot[i % len(bot)]))
    return turns


def _agent(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [*turns, ("agent", "Hi, I'm taking over from here and will sort this out for you.")]


def _planted(rng: random.Random, mode: str, number: int, drift: bool = False) -> dict[str, Any]:
    if mode == "billing_loop":
        turns = _dialogue(rng, BILLING_OPEN, BILLING_FOLLOW, BILLING_BOT, rng.randrange(8, 13))
        if drift:
            return _conversation(rng, number, turns, csat=None, abandoned=True)
        return _conversation(rng, number, turns, csat=rng.choice([1, 2, 3, None]))
    if mode == "password_hand":
        turns = _agent(_dialogue(rng, PASSWORD_OPEN, PASSWORD_FOLLOW, PASSWORD_BOT, rng.randrange(2, 5)))
        return _conversation(rng, number, turns, csat=rng.choice([3, 4, 5, None]), agent_took_over=True)
    if mode == "shipping_low_csat":
        turns = _dialogue(rng, SHIPPING_OPEN, SHIPPING_FOLLOW, SHIPPING_BOT, rng.randrange(2, 4))
        return _conversation(rng, number, turns, csat=rng.choice([1, 2]))
    if mode == "cancellation_abandoned":
        turns = _dialogue(rng, CANCEL_OPEN, CANCEL_FOLLOW, CANCEL_BOT, rng.randrange(2, 4))
        return _conversation(rng, number, turns, csat=None, abandoned=True)
    if mode == "legal_threat":
        turns = _agent(_dialogue(rng, LEGAL_OPEN, LEGAL_FOLLOW, LEGAL_BOT, rng.randrange(1, 3)))
        return _conversation(rng, number, turns, csat=rng.choice([1, 2, 3, None]), agent_took_over=True)
    if mode == "deletion_hand":
        turns = _agent(_dialogue(rng, DELETION_OPEN, DELETION_FOLLOW, DELETION_BOT, rng.randrange(1, 3)))
        return _conversation(rng, number, turns, csat=rng.choice([3, 4, None]), agent_took_over=True)
    if mode == "outage_low_csat":
        turns = _dialogue(rng, OUTAGE_OPEN, OUTAGE_FOLLOW, OUTAGE_BOT, rng.randrange(2, 4))
        return _conversation(rng, number, turns, csat=1)
    if mode == "human_ignored":
        turns = [("customer", _pick(rng, HUMAN_TOPICS)), ("bot", HUMAN_BOT[0])]
        for i in range(rng.randrange(2, 4)):
            turns += [("customer", _pick(rng, HUMAN_OPEN)), ("bot", HUMAN_BOT[(i + 1) % len(HUMAN_BOT)])]
        return _conversation(rng, number, turns, csat=None, abandoned=True)
    if mode == "export_bug_loop":
        turns = _dialogue(rng, EXPORT_OPEN, EXPORT_FOLLOW, EXPORT_BOT, rng.randrange(7, 11))
        return _conversation(rng, number, turns, csat=rng.choice([2, 3, None]))
    raise ValueError(f"unknown mode {mode!r}")


def _healthy(rng: random.Random, number: int) -> dict[str, Any]:
    question, answer = _pick_pair(rng)
    turns = [("customer", question), ("bot", answer), ("customer", _pick(rng, THANKS))]
    return _conversation(rng, number, turns, csat=rng.choice([4, 5, 5, None]))


def _noise(rng: random.Random, number: int) -> dict[str, Any]:
    """A conversation that went wrong once, for no pattern: a low rating, or a customer who left."""
    question, answer = _pick_pair(rng)
    turns = [("customer", question), ("bot", answer)]
    if number % 2:
        return _conversation(rng, number, turns, csat=2)
    return _conversation(rng, number, turns, csat=None, abandoned=True)


def _pick_pair(rng: random.Random) -> tuple[str, str]:
    return HEALTHY_QUESTIONS[rng.randrange(len(HEALTHY_QUESTIONS))]


def generate(seed: int = SEED) -> list[Planted]:
    """Every conversation with the mode it was planted with, in a shuffled (seeded) order."""
    rng = random.Random(seed)
    modes = [mode for mode, count in PLANTED_COUNTS.items() for _ in range(count)]
    modes += ["healthy"] * HEALTHY + ["noise"] * NOISE
    rng.shuffle(modes)
    planted = []
    seen: dict[str, int] = {}
    for number, mode in enumerate(modes, start=1):
        seen[mode] = seen.get(mode, 0) + 1
        if mode == "healthy":
            line = _healthy(rng, number)
        elif mode == "noise":
            line = _noise(rng, number)
        else:
            drift = mode in DRIFTED and seen[mode] % DRIFT_EVERY == 0
            line = _planted(rng, mode, number, drift)
        planted.append(Planted(line, mode))
    return planted


def write(path: Path, seed: int = SEED) -> dict[str, str]:
    """Write the set as helpdesk JSONL; returns each conversation id's planted mode."""
    planted = generate(seed)
    path.write_text("".join(json.dumps(p.line) + "\n" for p in planted), encoding="utf-8")
    return {p.line["conversation_id"]: p.mode for p in planted}
