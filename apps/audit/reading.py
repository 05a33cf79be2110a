"""The classifier's view of each past conversation: its intent, topic, frustration and loops.

Every customer message the bot saw is scored by Baton's own classifier (the scorer `BATON_CLASSIFIER`
configures, `scorer_for(settings)`), in batches, so an audit of thousands of conversations takes seconds.
A conversation's *intent* is the most serious grouping intent any of its messages has (``GROUP_INTENTS``,
in order); ``not_helping`` and ``resolved`` say how the bot did, not what the conversation was about, so
they never name a group. Its *topic* is the topic with the largest probability summed over its messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from baton.apps.audit.loading import PastConversation
from baton.apps.audit.shortfalls import Shortfall, Thresholds, shortfalls
from baton.classifier.scorer import Scorer
from baton.contract.labels import Intent, Topic
from baton.contract.scoring import MessageScores
from baton.domain.text import content_terms, similarity

BATCH = 512
# Most serious first: a billing dispute that turns into a legal threat is a legal threat.
GROUP_INTENTS: tuple[Intent, ...] = (
    Intent.SAFETY_OR_DISTRESS,
    Intent.LEGAL_THREAT,
    Intent.DATA_DELETION,
    Intent.BILLING_DISPUTE,
    Intent.CANCELLATION,
    Intent.HUMAN_REQUEST,
    Intent.CONTACT_REQUEST,
)
# The default policy's loop conditions, so that "the bot looped" means what the bot_loop and
# repeated_question triggers would have seen.
BOT_REPEATS, BOT_SIMILARITY = 2, 0.7
CUSTOMER_REPEATS, CUSTOMER_SIMILARITY = 3, 0.5


@dataclass(frozen=True)
class Reading:
    conversation: PastConversation
    shortfalls: tuple[Shortfall, ...]
    texts: tuple[str, ...]  # the customer's messages, as scored
    scores: tuple[MessageScores, ...]
    intent: Intent | None
    topic: Topic
    peak_frustration: float
    mean_frustration: float
    not_helping: bool
    bot_repeated: bool
    customer_repeated: bool

    @property
    def primary(self) -> Shortfall | None:
        return self.shortfalls[0] if self.shortfalls else None


def score_texts(
    scorer: Scorer, texts: Sequence[str], batch: int = BATCH, scored: Callable[[int], None] | None = None
) -> list[MessageScores]:
    """Scores of every text, in batches where the scorer has `score_many` (the shipped model does);
    `scored(n)` is told of every n texts done (a progress bar's update)."""
    many = getattr(scorer, "score_many", None)
    out: list[MessageScores] = []
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        out.extend(many(chunk) if many is not None else [scorer.score(t) for t in chunk])
        if scored is not None:
            scored(len(chunk))
    return out


def _repeats(texts: Sequence[str], times: int, threshold: float) -> bool:
    terms = [content_terms(t) for t in texts]
    for mine in terms:
        if len(mine) < 2:
            continue
        if sum(1 for other in terms if similarity(mine, other) >= threshold) >= times:
            return True
    return False


def _topic(scores: Sequence[MessageScores]) -> Topic:
    mass: dict[Topic, float] = {}
    for s in scores:
        for topic, p in (s.topic_probabilities or {s.topic: 1.0}).items():
            mass[topic] = mass.get(topic, 0.0) + p
    if not mass:
        return Topic.OTHER
    # Ties go to the order of the Topic enum, so the answer never depends on dict order.
    return max(Topic, key=lambda t: (mass.get(t, 0.0), -list(Topic).index(t)))


def read_conversation(
    conversation: PastConversation, scores: Sequence[MessageScores], thresholds: Thresholds
) -> Reading:
    texts = conversation.customer_texts
    found = {i for s in scores for i in s.intents}
    intent = next((i for i in GROUP_INTENTS if i in found), None)
    frustration = [s.frustration for s in scores] or [0.0]
    bot_texts = [m.text for m in conversation.bot_part if m.role == "bot"]
    return Reading(
        conversation=conversation,
        shortfalls=tuple(shortfalls(conversation, thresholds)),
        texts=tuple(texts),
        scores=tuple(scores),
        intent=intent,
        topic=_topic(scores),
        peak_frustration=max(frustration),
        mean_frustration=sum(frustration) / len(frustration),
        not_helping=Intent.NOT_HELPING in found,
        bot_repeated=_repeats(bot_texts, BOT_REPEATS, BOT_SIMILARITY),
        customer_repeated=_repeats(texts, CUSTOMER_REPEATS, CUSTOMER_SIMILARITY),
    )


def read_all(
    conversations: Sequence[PastConversation],
    scorer: Scorer,
    thresholds: Thresholds,
    scored: Callable[[int], None] | None = None,
) -> list[Reading]:
    """Every conversation read, its customer messages scored in batches across conversations (`scored`:
    as in `score_texts`)."""
    texts_per = [c.customer_texts for c in conversations]
    flat = [t for texts in texts_per for t in texts]
    scores = score_texts(scorer, flat, scored=scored)
    readings, offset = [], 0
    for conversation, texts in zip(conversations, texts_per, strict=True):
        readings.append(read_conversation(conversation, scores[offset : offset + len(texts)], thresholds))
        offset += len(texts)
    return readings
