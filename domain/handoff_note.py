"""The deterministic handoff note: what an agent gets when the LLM cannot write one.

Pure (no I/O, no clock, no randomness) so that it can run inside workflow
code as well as in the note activity. It quotes as little of the customer's
text as it needs: short gists, never whole messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from baton.contract.messages import (
    BugTicketDraft,
    CustomerContext,
    HandoffNote,
    Intent,
    NoteRequest,
    Signals,
    TranscriptEntry,
    TriggerHit,
)
from baton.domain.text import content_terms, similarity

GIST_CHARS = 110
BOT_GIST_CHARS = 90
MAX_ALREADY_TRIED = 4
MAX_ACTIONS = 6
MAX_STEPS = 5

# Intents in the order an agent should deal with them.
INTENT_PRIORITY: tuple[Intent, ...] = (
    Intent.SAFETY_OR_DISTRESS,
    Intent.LEGAL_THREAT,
    Intent.DATA_DELETION,
    Intent.BILLING_DISPUTE,
    Intent.CANCELLATION,
    Intent.HUMAN_REQUEST,
    Intent.NOT_HELPING,
)

# Trigger ids of the bundled policy that imply an intent, for notes built from triggers alone.
TRIGGER_INTENTS: dict[str, Intent] = {
    "severe_distress": Intent.SAFETY_OR_DISTRESS,
    "legal_threat": Intent.LEGAL_THREAT,
    "data_deletion_request": Intent.DATA_DELETION,
    "billing_dispute": Intent.BILLING_DISPUTE,
    "explicit_human_request": Intent.HUMAN_REQUEST,
    "bot_not_helping": Intent.NOT_HELPING,
}

WANTS: dict[Intent, str] = {
    Intent.SAFETY_OR_DISTRESS: "urgent help: they may be unsafe or in distress",
    Intent.LEGAL_THREAT: "the dispute resolved; they mention legal action or a regulator",
    Intent.DATA_DELETION: "their personal data deleted or disclosed (a data-subject request)",
    Intent.BILLING_DISPUTE: "a refund or correction of a charge they dispute",
    Intent.CANCELLATION: "to cancel their subscription or account",
    Intent.HUMAN_REQUEST: "to talk to a person",
    Intent.NOT_HELPING: "an answer that actually addresses their question",
}

ACTIONS: dict[Intent, str] = {
    Intent.SAFETY_OR_DISTRESS: "Check the customer is safe first; share crisis or emergency resources if at risk",
    Intent.LEGAL_THREAT: "Loop in legal/compliance before replying; do not admit fault or promise an outcome",
    Intent.DATA_DELETION: "Verify identity, log the DSAR, confirm the 30-day deadline",
    Intent.BILLING_DISPUTE: "Check the invoice history and payments for the disputed charge; confirm refund rules",
    Intent.CANCELLATION: "Confirm what they want cancelled and from when; offer alternatives once, never block it",
    Intent.HUMAN_REQUEST: "Introduce yourself by name so they know a person has taken over",
    Intent.NOT_HELPING: "Do not repeat the bot's suggestions; they have already tried them",
}

TRIGGER_ACTIONS: dict[str, str] = {
    "bot_loop": "Do not repeat the bot's suggestions; they have already tried them",
    "repeated_question": "Answer the question they keep asking directly, first",
    "at_risk_account": "At-risk account: tell the account owner/CSM about this conversation",
    "high_value_friction": "High-value account: keep the account manager informed",
}

TECHNICAL = re.compile(
    r"\b(errors?|crash(es|ed|ing)?|bugs?|buggy|broken|exceptions?|stack ?trace|traceback|5\d\d|404|"
    r"not loading|won'?t load|doesn'?t load|does not load|fails? to load|failed to load|stopped working|"
    r"timed? ?out|freez(es|ing)|frozen|blank (page|screen)|white screen|glitch(es|y)?)\b",
    re.IGNORECASE,
)
ACTION_WORDS = re.compile(
    r"\b(click(ed|ing)?|tap(ped)?|open(ed|ing)?|log(ged)? ?in|sign(ed)? ?in|upload(ed|ing)?|download(ed|ing)?|"
    r"export(ed|ing)?|import(ed|ing)?|sav(e|ed|ing)|submit(ted)?|go(ing)? to|went to|tr(y|ied|ying)|"
    r"install(ed)?|updat(e|ed|ing)|refresh(ed)?|reload(ed)?|select(ed)?|enter(ed)?|press(ed)?)\b",
    re.IGNORECASE,
)
EXPECTED = re.compile(r"\b(should|supposed to|expected?|used to|normally)\b", re.IGNORECASE)
ENVIRONMENT = re.compile(
    r"\b(chrome|firefox|safari|edge|opera|brave|internet explorer|"
    r"windows(?: \d+| xp| vista)?|mac ?os(?: \d+(?:\.\d+)*)?|os x|ios(?: \d+(?:\.\d+)*)?|ipados|"
    r"android(?: \d+)?|linux|ubuntu|chromeos|iphone(?: \d+)?|ipad|pixel(?: \d+)?|samsung|"
    r"(?:app )?version \d+(?:\.\d+)+|v\d+\.\d+(?:\.\d+)*|desktop app|mobile app|web app)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_GREETING = re.compile(
    r"^(hi|hello|hey|hiya|good (morning|afternoon|evening))( there| team| all)?\b[\s,!.:-]*", re.IGNORECASE
)
_SPACE = re.compile(r"\s+")


# --- Text helpers --------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """Whitespace collapsed and cut at a word boundary, with an ellipsis when cut."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


def sentences(text: str) -> list[str]:
    out = []
    for part in _SENTENCE.split(text):
        part = _GREETING.sub("", part.strip()) if part else ""
        if part:
            out.append(part[0].upper() + part[1:])
    return out


def gist(text: str, limit: int = GIST_CHARS) -> str:
    """The first sentence with some substance, clipped; enough to know what a message is about."""
    parts = sentences(text)
    if not parts:
        return clip(text, limit)
    best = next((p for p in parts if len(content_terms(p)) >= 2), parts[0])
    return clip(best, limit)


def quote(text: str) -> str:
    return f"“{text}”"


def _last_question(customer: list[TranscriptEntry]) -> str | None:
    for entry in reversed(customer):
        for sentence in reversed(sentences(entry.text)):
            if sentence.endswith("?"):
                return clip(sentence, GIST_CHARS)
    return None


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


# --- Sections ------------------------------------------------------------------


def _intents(customer: list[TranscriptEntry], triggers: list[TriggerHit]) -> list[Intent]:
    found: set[Intent] = set()
    for entry in customer:
        if entry.signals is not None:
            found.update(entry.signals.intents)
    found.update(TRIGGER_INTENTS[t.id] for t in triggers if t.id in TRIGGER_INTENTS)
    return [intent for intent in INTENT_PRIORITY if intent in found]


def _summary(request: NoteRequest, customer: list[TranscriptEntry]) -> str:
    head = f"{len(customer)} customer message{'s' if len(customer) != 1 else ''} on {request.channel}"
    if request.urgency:
        head += f", escalated ({request.urgency})"
    if not customer:
        return f"{head}. No customer messages in the transcript."
    first = gist(customer[0].text)
    if len(customer) == 1:
        return f"{head}. Customer wrote: {quote(first)}"
    latest = gist(customer[-1].text)
    if latest == first:
        return f"{head}. Opened with: {quote(first)} The latest message repeats it."
    return f"{head}. Opened with: {quote(first)} Latest: {quote(latest)}"


def _customer_wants(intents: list[Intent], customer: list[TranscriptEntry]) -> str:
    wants = [WANTS[i] for i in intents if i is not Intent.NOT_HELPING] or [WANTS[i] for i in intents]
    question = _last_question(customer)
    if wants:
        text = "; ".join(wants)
        text = text[0].upper() + text[1:]
        return f"{text}. Last question: {quote(question)}" if question else f"{text}."
    if question:
        return f"An answer to: {quote(question)}"
    if customer:
        return f"Help with: {quote(gist(customer[0].text))}"
    return "Not stated"


def _already_tried(transcript: list[TranscriptEntry]) -> list[str]:
    groups: list[tuple[frozenset[str], str, int]] = []  # terms, gist, times sent
    for entry in transcript:
        # Only what the bot (or an earlier agent) said; Baton's own status messages tried nothing.
        if entry.role not in ("bot", "agent") or not entry.text.strip():
            continue
        label = gist(entry.text, BOT_GIST_CHARS)
        if entry.role == "agent":
            label = f"Agent: {label}"
        terms = content_terms(entry.text)
        for i, (seen_terms, seen_label, count) in enumerate(groups):
            if seen_label == label or similarity(seen_terms, terms) >= 0.7:
                groups[i] = (seen_terms, seen_label, count + 1)
                # Move to the end: the most recent attempts matter most.
                groups.append(groups.pop(i))
                break
        else:
            groups.append((terms, label, 1))
    return [label if count == 1 else f"{label} (sent {count} times)" for _, label, count in groups[-MAX_ALREADY_TRIED:]]


def _mood(signals: Signals) -> str:
    if Intent.SAFETY_OR_DISTRESS in signals.intents:
        return "distressed"
    if signals.frustration >= 0.6:
        return "frustrated"
    if signals.frustration >= 0.3 or signals.sentiment <= -0.3:
        return "annoyed"
    if signals.sentiment >= 0.3:
        return "positive"
    return "neutral"


def _sentiment_trajectory(customer: list[TranscriptEntry]) -> str:
    scored = [e.signals for e in customer if e.signals is not None]
    if not scored:
        return "No sentiment signals recorded"
    first, last = scored[0], scored[-1]
    n = len(scored)
    count = f"{n} message{'s' if n != 1 else ''}"
    if n == 1:
        text = f"{_mood(last)}; frustration {last.frustration:.2f} ({count})"
    else:
        moods = _mood(first) if _mood(first) == _mood(last) else f"{_mood(first)} → {_mood(last)}"
        text = f"{moods}; frustration {first.frustration:.2f} → {last.frustration:.2f} over {count}"
        peak = max(s.frustration for s in scored)
        if peak >= last.frustration + 0.15:
            text += f" (peak {peak:.2f})"
    markers = _unique(m for s in scored for m in s.markers)
    if markers:
        text += f"; {', '.join(m.replace('_', ' ') for m in markers)}"
    return text


def account_line(request: NoteRequest) -> str:
    """The customer's account in one line, or why it is unavailable."""
    context: CustomerContext | None = request.context
    if context is None:
        return "CRM context unavailable"
    facts = context.facts
    parts = []
    if facts.tier:
        parts.append(f"{facts.tier} tier")
    if facts.mrr is not None:
        parts.append(f"MRR ${facts.mrr:,.0f}")
    if request.segment:
        parts.append(f"segment {request.segment}")
    if facts.renewal_date is not None:
        renewal = f"renews {facts.renewal_date.isoformat()}"
        if request.transcript:
            # Relative to the conversation, not the clock, so the note stays deterministic.
            days = (facts.renewal_date - request.transcript[-1].at.date()).days
            if 0 <= days <= 120:
                renewal += f" (in {days} days)"
        parts.append(renewal)
    if facts.health is not None:
        parts.append(f"health {facts.health:.0f}/100")
    if facts.lifecycle_stage:
        parts.append(f"stage {facts.lifecycle_stage}")
    if facts.account_created_at is not None:
        parts.append(f"customer since {facts.account_created_at.isoformat()}")
    if facts.flags:
        parts.append("flags: " + ", ".join(facts.flags[:5]))
    if facts.last_escalation_at is not None:
        last = f"last escalation {facts.last_escalation_at.date().isoformat()}"
        if facts.last_escalation_agent:
            last += f" (agent {facts.last_escalation_agent})"
        parts.append(last)
    body = ", ".join(parts)
    if not context.available:
        return f"CRM context unavailable; from the chat backend: {body}" if body else "CRM context unavailable"
    if not body:
        return f"No account facts on record (source: {context.source})"
    return f"{body} (source: {context.source})"


def _recommended_actions(
    intents: list[Intent], request: NoteRequest, technical: bool, customer: list[TranscriptEntry]
) -> list[str]:
    actions = [ACTIONS[i] for i in intents]
    actions += [TRIGGER_ACTIONS[t.id] for t in request.triggers if t.id in TRIGGER_ACTIONS]
    if technical:
        actions.append("Reproduce the problem and file the drafted bug ticket; tell the customer what happens next")
    if request.context is None or not request.context.available:
        actions.append("Check the account and plan in the CRM yourself before promising anything")
    if customer and customer[-1].signals is not None and customer[-1].signals.frustration >= 0.6:
        actions.append("Acknowledge the frustration and the wait before anything else")
    actions.append("Give a concrete next step and when they will hear back")
    return _unique(actions)[:MAX_ACTIONS]


def _issue_phrase(intents: list[Intent], technical: bool) -> str:
    for intent in intents:
        if intent is Intent.LEGAL_THREAT:
            return "you're unhappy with how this has been handled and want it resolved properly"
        if intent is Intent.DATA_DELETION:
            return "you'd like your personal data deleted or a copy of what we hold"
        if intent is Intent.BILLING_DISPUTE:
            return "there's a charge on your account you don't agree with and you want it put right"
        if intent is Intent.CANCELLATION:
            return "you'd like to cancel"
    if technical:
        return "you're running into an error that's stopping you from getting things done"
    return "you haven't had the help you need yet"


def _suggested_first_reply(intents: list[Intent], technical: bool, customer: list[TranscriptEntry]) -> str:
    if Intent.SAFETY_OR_DISTRESS in intents:
        return (
            "Hi, I'm [name], a member of the support team, and I'm here with you now. "
            "Before anything else: are you safe right now? "
            "I've read the whole conversation, so you don't need to repeat anything."
        )
    frustrated = bool(customer) and customer[-1].signals is not None and customer[-1].signals.frustration >= 0.6
    sorry = "I'm sorry this has taken so long. " if frustrated else ""
    return (
        f"Hi, I'm [name] from the support team. {sorry}I've read your conversation with our assistant, "
        f"so there's no need to repeat anything. I understand {_issue_phrase(intents, technical)}; "
        "I'm looking into it now."
    )


def _bug_ticket(customer: list[TranscriptEntry], channel: str) -> BugTicketDraft | None:
    technical = [e for e in customer if TECHNICAL.search(e.text)]
    if not technical:
        return None
    all_sentences = [s for e in customer for s in sentences(e.text)]
    actual_sentence = next((s for s in all_sentences if TECHNICAL.search(s)), technical[0].text)
    steps = _unique(
        clip(s, 100) for s in all_sentences if ACTION_WORDS.search(s) and not EXPECTED.search(s) and not s.endswith("?")
    )
    expected = next((s for s in all_sentences if EXPECTED.search(s)), None)
    environment = _unique(m.group(0) for e in customer for m in ENVIRONMENT.finditer(e.text))
    return BugTicketDraft(
        title=f"Customer report: {gist(actual_sentence, 80).rstrip('.!')}",
        steps=steps[:MAX_STEPS] or ["Not stated: ask the customer what they were doing when it happened"],
        expected=clip(expected, 140) if expected else "It works without an error (not stated by the customer)",
        actual=clip(actual_sentence, 140),
        environment=(", ".join(environment[:6]) if environment else "not stated") + f"; channel {channel}",
    )


def trigger_lines(triggers: list[TriggerHit]) -> list[str]:
    return [f"{t.id}: {t.detail}" if t.detail else t.id for t in triggers]


# --- The note ------------------------------------------------------------------


def fallback_note(request: NoteRequest, reason: str) -> HandoffNote:
    """A handoff note from the transcript and signals alone; same input, same note."""
    customer = [e for e in request.transcript if e.role == "customer"]
    intents = _intents(customer, request.triggers)
    ticket = _bug_ticket(customer, request.channel)
    technical = ticket is not None
    return HandoffNote(
        summary=_summary(request, customer),
        customer_wants=_customer_wants(intents, customer),
        already_tried=_already_tried(request.transcript),
        sentiment_trajectory=_sentiment_trajectory(customer),
        account=account_line(request),
        triggers=trigger_lines(request.triggers),
        recommended_actions=_recommended_actions(intents, request, technical, customer),
        suggested_first_reply=_suggested_first_reply(intents, technical, customer),
        technical=technical,
        bug_ticket=ticket,
        source="fallback",
        fallback_reason=reason,
    )
