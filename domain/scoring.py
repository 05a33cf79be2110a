"""Deterministic, offline message scoring: sentiment, frustration, intents.

Rules rather than a model so that a decision can be explained and replayed,
and so that Baton works with no model endpoint at all. Intent rules are
clause-aware: a negated phrase ("I don't need a human") or a mention in a
question about the product ("does your bot hand chats to a human agent?") is
not a request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from baton.contract.messages import Intent, Signals
from baton.contract.scoring import MessageScores
from baton.domain.text import content_terms, similarity

READ_CACHE = 8192  # messages whose reading is kept (a few MB at most)
_CLAUSE_SPLIT = re.compile(r"[.;!?\n]+|,|\bbut\b|\bjust\b|\bso\b")
_TOKEN = re.compile(r"[a-z0-9']+")
NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "dont",
        "don't",
        "doesnt",
        "doesn't",
        "didnt",
        "didn't",
        "isnt",
        "isn't",
        "wont",
        "won't",
        "cant",
        "can't",
        "cannot",
        "without",
        "neither",
        "nor",
        "wasnt",
        "wasn't",
        "arent",
        "aren't",
    ]
)

HUMAN_NOUNS = frozenset(
    [
        "human",
        "humans",
        "person",
        "people",
        "agent",
        "agents",
        "representative",
        "rep",
        "someone",
        "somebody",
        "manager",
        "supervisor",
        "operator",
        "staff",
    ]
)
REQUEST_VERBS = frozenset(
    ["talk", "speak", "chat", "connect", "transfer", "escalate", "reach", "contact", "get", "give", "put"]
)
FIRST_PERSON_ASK = re.compile(
    r"\b(i|i'd|id|i'm|im|me|let me|can i|could i|may i|we|we'd)\b"
    r".*\b(talk|speak|chat|want|need|like|reach|contact|get|have|see)\b"
)
PRODUCT_QUESTION = re.compile(
    r"^(does|do|can|is|are|will|would|how does|how do)\s+(your|the|this|you guys'?)\s*"
    r"(product|app|bot|platform|system|tool|service|software|widget|chat|team)?\b"
)

LEGAL = re.compile(
    r"\b(lawyer|lawyers|attorney|attorneys|solicitor|sue|suing|lawsuit|legal action|court|small claims|class action|"
    r"regulator|ftc|ombudsman|trading standards|consumer protection|report you to)\b"
)
DISTRESS = re.compile(
    r"\b(suicide|suicidal|kill myself|end my life|hurt myself|harm myself|self[- ]harm|want to die|"
    r"in danger|not safe|unsafe|being threatened|threatening me|abus(e|ed|ing) me|emergency|can't go on|cant go on)\b"
)
DELETION = re.compile(
    r"\b(delete|erase|remove|wipe|purge)\b.*\b(my|our|all)\b.*\b(data|information|info|account|details|records|personal)\b|"
    r"\bright to be forgotten\b|\bdata subject\b|\b(gdpr|ccpa)\b.*\b(request|delete|erase|access|export|copy)\b|"
    r"\b(request|delete|erase|access|export|copy)\b.*\b(gdpr|ccpa)\b|\bwhat data do you (have|hold|keep)\b"
)
BILLING = re.compile(
    r"\b(refund|refunds|refunded|chargeback|charged twice|double charged|double-charged|overcharged|over-charged|"
    r"dispute|disputing|unauthori[sz]ed charge|wrong amount|money back|billed (twice|incorrectly|wrongly)|"
    r"incorrect (charge|invoice|bill))\b"
)
CANCEL = re.compile(
    r"\b(cancel|cancelling|canceling|terminate|close)\b.*\b(subscription|account|plan|contract|membership|service)\b|"
    r"\bunsubscribe\b|\bswitch(ing)? to (a )?competitor\b|\bwant out\b"
)
RESOLVED = re.compile(
    r"\b(that|it|this) (worked|works|fixed it|did it|did the trick|solved it)\b|\bworks now\b|\bworking now\b|"
    r"\b(problem|issue) (is )?(solved|resolved|fixed)\b|\ball (good|set|sorted)\b|\bthat'?s all\b|\bsorted\b"
)
NOT_HELPING = re.compile(
    r"\b(is|isn't|isnt|not|you're not|youre not|this isn't|doesn't|doesnt|didn't|didnt)\s*(really )?help(ing|ful)?\b|"
    r"\buseless\b|\bnot helpful\b|\bunhelpful\b|\b(you|bot) (don't|dont|do not) understand\b|\bnot what i asked\b|"
    r"\bgoing (in|round in) circles\b|\bgoing nowhere\b|\bsame (answer|thing|reply) (again|over)\b|"
    r"\bstop (sending|giving) me\b"
)
THANKS = re.compile(r"\b(thanks|thank you|thx|cheers|appreciate it)\b")
PERSISTENCE = re.compile(r"\b(still|again|already|yet again|keeps?|same|another|third time|second time|once more)\b")
PROFANITY = re.compile(
    r"\b(fuck\w*|f\*+k|shit\w*|bullshit|crap|damn|dammit|goddamn|wtf|asshole|bastard|bloody hell|piss(ed)? off|bitch)\b"
)
REPEATED_PUNCT = re.compile(r"[!?]{2,}")

POSITIVE = {
    "thanks": 1.0,
    "thank": 1.0,
    "great": 1.0,
    "perfect": 1.2,
    "awesome": 1.2,
    "excellent": 1.2,
    "love": 1.0,
    "helpful": 1.0,
    "appreciate": 1.0,
    "works": 0.8,
    "worked": 0.8,
    "fixed": 0.8,
    "solved": 0.8,
    "good": 0.6,
    "nice": 0.6,
    "happy": 0.8,
    "glad": 0.8,
    "amazing": 1.2,
    "wonderful": 1.2,
    "brilliant": 1.0,
    "easy": 0.5,
}
NEGATIVE = {
    "broken": 1.0,
    "useless": 1.4,
    "terrible": 1.4,
    "awful": 1.4,
    "horrible": 1.4,
    "worst": 1.5,
    "hate": 1.3,
    "angry": 1.3,
    "furious": 1.6,
    "frustrated": 1.3,
    "frustrating": 1.3,
    "annoyed": 1.0,
    "annoying": 1.0,
    "ridiculous": 1.3,
    "unacceptable": 1.5,
    "disappointed": 1.1,
    "disappointing": 1.1,
    "waste": 1.1,
    "fail": 0.8,
    "failed": 0.8,
    "failing": 0.8,
    "error": 0.6,
    "errors": 0.6,
    "wrong": 0.7,
    "bad": 0.8,
    "stupid": 1.2,
    "scam": 1.5,
    "pathetic": 1.4,
    "joke": 0.9,
    "nothing": 0.3,
    "problem": 0.4,
    "issue": 0.3,
    "crash": 0.8,
    "crashes": 0.8,
    "down": 0.4,
    "slow": 0.5,
    "stuck": 0.7,
    "lost": 0.7,
    "missing": 0.5,
    "nobody": 0.6,
    "ignored": 1.0,
    "upset": 1.2,
    "desperate": 1.3,
    "help": 0.2,
    "urgent": 0.7,
    "asap": 0.6,
    "hours": 0.2,
    "days": 0.2,
}


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_SPLIT.split(text.lower()) if c and c.strip()]


def _negated(clause: str, match: re.Match[str]) -> bool:
    before = _TOKEN.findall(clause[: match.start()])[-4:]
    return any(w in NEGATIONS for w in before)


def _clause_hits(pattern: re.Pattern[str], clauses: list[str], negatable: bool = True) -> bool:
    for clause in clauses:
        m = pattern.search(clause)
        if m and not (negatable and _negated(clause, m)):
            return True
    return False


def _human_request(text: str, clauses: list[str]) -> bool:
    for clause in clauses:
        if PRODUCT_QUESTION.match(clause) and not FIRST_PERSON_ASK.search(clause):
            continue  # a question about the product ("does your bot route chats to a human?")
        tokens = _TOKEN.findall(clause)
        noun_at = next((i for i, w in enumerate(tokens) if w in HUMAN_NOUNS), None)
        if noun_at is None:
            if re.search(r"\breal (one|live)\b|\blive chat\b", clause) and not _negated_tokens(tokens, len(tokens)):
                return True
            continue
        if _negated_tokens(tokens, noun_at):
            continue
        # "please put me through...", "could you connect me...": politeness before the verb.
        head = tokens[1:] if tokens and tokens[0] in ("please", "pls", "kindly") else tokens
        if len(head) > 2 and head[0] in ("can", "could", "would", "will") and head[1] == "you":
            head = head[2:]
        imperative = bool(head) and head[0] in REQUEST_VERBS
        asked = bool(FIRST_PERSON_ASK.search(" ".join(tokens[: noun_at + 1])))
        bare = len(tokens) <= 3  # "human please", "agent!", "a real person"
        if imperative or asked or bare or "is there" in clause or "any " in clause:
            return True
    return False


def _negated_tokens(tokens: list[str], upto: int) -> bool:
    return any(w in NEGATIONS for w in tokens[:upto])


NEGATIVE_PHRASES = re.compile(
    r"\b(doesn't|doesnt|does not|isn't|isnt|is not|not|didn't|didnt|did not|won't|wont|can't|cant|never)\s+"
    r"(work|works|working|help|helping|helpful|load|loading|fixed|resolved)\b"
)


def _sentiment(text: str) -> float:
    lowered = text.lower()
    tokens = _TOKEN.findall(lowered)
    total = -1.3 * len(NEGATIVE_PHRASES.findall(lowered)) - 1.0 * len(PROFANITY.findall(lowered))
    for i, word in enumerate(tokens):
        weight = POSITIVE.get(word, 0.0) - NEGATIVE.get(word, 0.0)
        if word in NEGATIONS:
            continue
        if weight and any(w in NEGATIONS for w in tokens[max(0, i - 3) : i]):
            # "not great" is negative; "not bad" only mildly positive.
            weight = -weight * (0.5 if weight < 0 else 1.0)
        total += weight
    if not tokens:
        return 0.0
    return max(-1.0, min(1.0, math.tanh(total / 2.5)))


def _markers(text: str, lowered: str) -> list[str]:
    markers = []
    if PROFANITY.search(lowered):
        markers.append("profanity")
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) >= 0.6:
        markers.append("shouting")
    if REPEATED_PUNCT.search(text):
        markers.append("repeated_punctuation")
    if PERSISTENCE.search(lowered):
        markers.append("persistence")
    return markers


@dataclass(frozen=True)
class RuleReading:
    """What the rules read in one message on its own: intents, markers, sentiment."""

    intents: tuple[Intent, ...]
    markers: tuple[str, ...]
    sentiment: float
    not_helping: bool
    persistence_words: int
    resolved: bool


@lru_cache(maxsize=READ_CACHE)
def read(text: str) -> RuleReading:
    """The rules' reading of one message, without the conversation (also the classifier's rule features).

    Pure and immutable, so cached: a message is read by the classifier's rule features and again when its
    scores are composed with the conversation, and replays and evaluations read the same texts many times."""
    lowered = text.lower()
    clauses = _clauses(text)
    intents: list[Intent] = []
    if _human_request(text, clauses):
        intents.append(Intent.HUMAN_REQUEST)
    if _clause_hits(LEGAL, clauses):
        intents.append(Intent.LEGAL_THREAT)
    if _clause_hits(DISTRESS, clauses, negatable=False):
        intents.append(Intent.SAFETY_OR_DISTRESS)
    if DELETION.search(lowered) and not PRODUCT_QUESTION.match(lowered.strip()):
        intents.append(Intent.DATA_DELETION)
    if _clause_hits(BILLING, clauses) and not PRODUCT_QUESTION.match(lowered.strip()):
        intents.append(Intent.BILLING_DISPUTE)
    if _clause_hits(CANCEL, clauses) and not PRODUCT_QUESTION.match(lowered.strip()):
        intents.append(Intent.CANCELLATION)
    not_helping = bool(NOT_HELPING.search(lowered))
    if not_helping:
        intents.append(Intent.NOT_HELPING)
    markers = _markers(text, lowered)
    sentiment = _sentiment(text)
    resolved = _clause_hits(RESOLVED, clauses) or (
        bool(THANKS.search(lowered)) and sentiment >= 0 and "persistence" not in markers and not not_helping
    )
    return RuleReading(
        intents=tuple(intents),
        markers=tuple(markers),
        sentiment=sentiment,
        not_helping=not_helping,
        persistence_words=len(PERSISTENCE.findall(lowered)),
        resolved=resolved,
    )


def score(
    text: str, previous_customer_texts: list[str] | None = None, previous_frustration: list[float] | None = None
) -> Signals:
    """Score one customer message in the light of the conversation so far."""
    previous_customer_texts = previous_customer_texts or []
    previous_frustration = previous_frustration or []
    reading = read(text)
    intents = list(reading.intents)
    markers = list(reading.markers)
    sentiment = reading.sentiment
    not_helping = reading.not_helping
    terms = content_terms(text)
    repeating = len(terms) >= 2 and any(similarity(content_terms(t), terms) >= 0.5 for t in previous_customer_texts)
    if repeating:
        markers.append("repeated_message")

    if reading.resolved and not intents:
        intents.append(Intent.RESOLVED)

    frustration = 0.5 * max(0.0, -sentiment)
    frustration += 0.15 * min(2, reading.persistence_words)
    frustration += 0.15 if "shouting" in markers else 0.0
    frustration += 0.1 if "repeated_punctuation" in markers else 0.0
    frustration += 0.3 if "profanity" in markers else 0.0
    frustration += 0.2 if repeating else 0.0
    frustration += 0.25 if not_helping else 0.0
    if previous_frustration:
        # Frustration builds over a conversation; it does not reset per message.
        frustration += 0.35 * previous_frustration[-1]
    if Intent.RESOLVED in intents:
        frustration = min(frustration, 0.1)
    return Signals(
        sentiment=round(sentiment, 3),
        frustration=round(max(0.0, min(1.0, frustration)), 3),
        intents=intents,
        markers=markers,
    )


def compose(
    scores: MessageScores,
    text: str,
    previous_customer_texts: list[str] | None = None,
    previous_frustration: list[float] | None = None,
) -> Signals:
    """Conversation-level signals from the classifier's scores of one message.

    Intents, topic and probabilities are the classifier's. Frustration, sentiment and markers are the
    rules' reading of the conversation (persistence, repeating oneself, carried over from the last
    message): the policy's frustration thresholds are set on that scale, and the model's own frustration
    score (recorded in `MessageScores.frustration`) still reads calm questions about "a human agent" as
    upset. It stays recorded for when it is good enough to decide on.
    """
    rules = score(text, previous_customer_texts, previous_frustration)
    if scores.source == "rules":
        # The rule scorer as the conversation's classifier: exactly as the rules always were.
        return rules.model_copy(update={"model_version": scores.model_version})
    frustration = rules.frustration
    if Intent.RESOLVED in scores.intents:
        frustration = min(frustration, 0.1)
    return rules.model_copy(
        update={
            "intents": list(scores.intents),
            "frustration": frustration,
            "source": scores.source,
            "topic": scores.topic,
            "topic_probability": scores.topic_probabilities.get(scores.topic),
            "probabilities": dict(scores.probabilities),
            "model_version": scores.model_version,
        }
    )
