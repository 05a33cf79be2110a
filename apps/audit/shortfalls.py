"""Where one past conversation shows that the bot fell short, by outcome alone (no classifier here).

Five kinds, checked in this order; the first that applies is the conversation's *primary* shortfall, which
decides its scenario type (a looped conversation that was also rated low counts once, as a loop):

0. ``missed_escalation``: a reviewer or an agent marked it as a conversation that should have been handed
   over (Baton's export carries the label, `baton review label CONV --missed`).
1. ``hand_escalation``: a person took over and the bot had not handed the conversation over itself.
2. ``abandoned``: the customer left, no person took over and the bot had not escalated.
3. ``many_turns``: at least ``many_turns`` customer messages before a person answered.
4. ``low_csat``: a rating at or below ``low_csat`` (1-5 scale).

An abandonment after the bot escalated is a queue problem, not the bot's, and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from baton.apps.audit.loading import PastConversation

DEFAULT_MANY_TURNS = 6
DEFAULT_LOW_CSAT = 2.0


class Shortfall(StrEnum):
    MISSED_ESCALATION = "missed_escalation"
    HAND_ESCALATION = "hand_escalation"
    ABANDONED = "abandoned"
    MANY_TURNS = "many_turns"
    LOW_CSAT = "low_csat"


SHORTFALL_TEXT = {
    Shortfall.MISSED_ESCALATION: "marked a missed escalation",
    Shortfall.HAND_ESCALATION: "an agent took over by hand",
    Shortfall.ABANDONED: "the customer gave up",
    Shortfall.MANY_TURNS: "many back-and-forth turns",
    Shortfall.LOW_CSAT: "low CSAT",
}


@dataclass(frozen=True)
class Thresholds:
    many_turns: int = DEFAULT_MANY_TURNS
    low_csat: float = DEFAULT_LOW_CSAT


def shortfalls(conversation: PastConversation, thresholds: Thresholds) -> list[Shortfall]:
    """Every shortfall of the conversation, primary first; empty when it went well."""
    found = []
    if conversation.missed:
        found.append(Shortfall.MISSED_ESCALATION)
    if conversation.agent_took_over and not conversation.bot_escalated:
        found.append(Shortfall.HAND_ESCALATION)
    if conversation.abandoned and not conversation.agent_took_over and not conversation.bot_escalated:
        found.append(Shortfall.ABANDONED)
    if conversation.turns >= thresholds.many_turns:
        found.append(Shortfall.MANY_TURNS)
    if conversation.csat is not None and conversation.csat <= thresholds.low_csat:
        found.append(Shortfall.LOW_CSAT)
    return found
