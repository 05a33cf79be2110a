"""What Chatwoot's agents read of an escalation: the handoff note as a private note, and its labels (pure)."""

from __future__ import annotations

from baton.contract.messages import Decision, Escalation, HandoffNote

MAX_NOTE_CHARS = 8000  # well under Chatwoot's message limit; the full note is in Baton's pickup answer


def note_text(note: HandoffNote, escalation: Escalation | None) -> str:
    """The handoff note as a private note: short lines an agent scans before replying."""
    lines = ["**Baton handoff**"]
    if escalation is not None:
        queue = f", queue {escalation.queue}" if escalation.queue else ""
        lines.append(f"Urgency: {escalation.urgency}{queue}")
    lines += [f"Summary: {note.summary}", f"Customer wants: {note.customer_wants}"]
    if note.already_tried:
        lines.append("Already tried: " + "; ".join(note.already_tried))
    lines += [f"Sentiment: {note.sentiment_trajectory}", f"Account: {note.account}"]
    if note.triggers:
        lines.append("Why: " + "; ".join(note.triggers))
    if note.recommended_actions:
        lines.append("Recommended: " + "; ".join(note.recommended_actions))
    lines.append(f"Suggested first reply: {note.suggested_first_reply}")
    if note.bug_ticket is not None:
        lines.append(f"Bug ticket draft: {note.bug_ticket.title}")
    return "\n".join(lines)[:MAX_NOTE_CHARS]


def decision_note(decision: Decision) -> str:
    """A note from the decision alone, when the conversation's note is not ready in time."""
    why = "; ".join(f"{t.id}: {t.detail}" if t.detail else t.id for t in decision.triggers) or "no trigger named"
    return "\n".join(
        [
            "**Baton handoff** (the full note is in Baton's pickup answer)",
            f"Urgency: {decision.urgency or 'queued'}",
            f"Why: {why}",
        ]
    )


def labels_for(decision: Decision, escalation: Escalation | None) -> list[str]:
    """Trigger ids and the urgency, in Chatwoot's label form (lower case, letters, digits, - and _)."""
    triggers = [t.id for t in decision.triggers] + ([t.id for t in escalation.triggers] if escalation else [])
    urgency = escalation.urgency if escalation else decision.urgency
    wanted = [*triggers, f"urgency-{urgency}" if urgency else ""]
    seen: list[str] = []
    for label in wanted:
        clean = "".join(c if c.isalnum() or c in "-_" else "-" for c in label.lower()).strip("-")
        if clean and clean not in seen:
            seen.append(clean)
    return seen
