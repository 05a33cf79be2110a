"""Features of one message, the same at training and at run time.

Three parts, concatenated: hashed character and word n-grams (spelling, misspellings, code-mixing),
the static sentence embedding (meaning beyond the words seen in training), and the rules' reading
(negation-aware intents, shouting, profanity, sentiment), so that what the rules did well is kept.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib

import numpy as np

from baton.contract.messages import Intent
from baton.domain.scoring import read

HASH_BITS = 17
BUCKETS = 1 << HASH_BITS
CHAR_NGRAMS = (2, 3, 4, 5)
WORD_NGRAMS = (1, 2)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
RULE_INTENTS = (
    Intent.HUMAN_REQUEST,
    Intent.LEGAL_THREAT,
    Intent.SAFETY_OR_DISTRESS,
    Intent.DATA_DELETION,
    Intent.BILLING_DISPUTE,
    Intent.CANCELLATION,
    Intent.NOT_HELPING,
)
RULE_MARKERS = ("profanity", "shouting", "repeated_punctuation", "persistence")
RULE_FEATURES = (
    *(f"rule:{i.value}" for i in RULE_INTENTS),
    "rule:resolved",
    *(f"marker:{m}" for m in RULE_MARKERS),
    "sentiment:negative",
    "sentiment:positive",
    "persistence_words",
    "question",
    "length",
    "bias",
)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _bucket(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & (BUCKETS - 1)


def hashed_ngrams(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Bucket indices and weights (log counts, unit length) of the message's n-grams."""
    lowered = normalise(text)
    words = _WORD.findall(lowered)
    counts: dict[int, float] = {}
    for n in WORD_NGRAMS:
        for i in range(len(words) - n + 1):
            key = _bucket("w:" + " ".join(words[i : i + n]))
            counts[key] = counts.get(key, 0.0) + 1.0
    for word in words:
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            for i in range(len(padded) - n + 1):
                key = _bucket("c:" + padded[i : i + n])
                counts[key] = counts.get(key, 0.0) + 1.0
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = np.log1p(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    values /= float(np.linalg.norm(values))
    return indices, values


def rule_features(text: str) -> np.ndarray:
    reading = read(text)
    intents = set(reading.intents)
    values = [
        *(1.0 if i in intents else 0.0 for i in RULE_INTENTS),
        1.0 if reading.resolved else 0.0,
        *(1.0 if m in reading.markers else 0.0 for m in RULE_MARKERS),
        max(0.0, -reading.sentiment),
        max(0.0, reading.sentiment),
        min(2.0, float(reading.persistence_words)) / 2.0,
        1.0 if "?" in text else 0.0,
        min(1.0, math.log1p(len(text)) / math.log1p(500)),
        1.0,
    ]
    return np.asarray(values, dtype=np.float32)
