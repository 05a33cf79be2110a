"""Pure text helpers shared by scoring and the policy engine."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9']+")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "to",
        "of",
        "in",
        "on",
        "for",
        "with",
        "at",
        "by",
        "from",
        "and",
        "or",
        "but",
        "if",
        "so",
        "as",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "how",
        "what",
        "when",
        "where",
        "why",
        "which",
        "who",
        "please",
        "just",
        "still",
        "again",
        "now",
        "then",
        "any",
        "some",
        "all",
        "about",
        "into",
        "up",
        "out",
        "over",
        "get",
        "got",
        "im",
        "i'm",
        "ive",
        "i've",
        "ok",
        "okay",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
        "yes",
        "no",
        "not",
        "dont",
        "don't",
        "cant",
        "can't",
    ]
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    # A deliberately light stemmer: enough to see "resetting" and "reset",
    # "passwords" and "password" as one word, without a dependency.
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2]:
        word = word[:-1]
    return word


@lru_cache(maxsize=4096)  # pure and immutable; each message is compared with the ones after it
def content_terms(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two term sets; 0 when either is empty."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
