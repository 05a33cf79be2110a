"""Features of one message, the same at training and at run time.

Four parts, concatenated: hashed character and word n-grams (spelling, misspellings, code-mixing),
the static sentence embedding (meaning beyond the words seen in training, baton.classifier.embedding),
the rules' reading (negation-aware intents, shouting, profanity, sentiment), so that what the rules did
well is kept, and the VADER sentiment lexicon's scores (vaderSentiment, MIT; its lexicon files are
checked by SHA-256 like every other file a score depends on).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
import unicodedata
import zlib
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from baton.contract.messages import Intent
from baton.domain.scoring import read

HASH_BITS = 17
BUCKETS = 1 << HASH_BITS
CHAR_NGRAMS = (2, 3, 4, 5)
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
SENTIMENT_FEATURES = ("vader:neg", "vader:pos", "vader:compound_neg", "vader:compound_pos")
DENSE_FEATURES = (*RULE_FEATURES, *SENTIMENT_FEATURES)  # beside the embedding, in this order
VADER_SHA256 = {
    "vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
    "emoji_utf8_lexicon.txt": "b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823",
}


class FeatureError(RuntimeError):
    """A package the features need is missing or not the pinned version's files."""


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _bucket(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & (BUCKETS - 1)


# A word's buckets (its unigram, then its character n-grams) depend on the word alone, and the words of a
# support inbox repeat: remembering the most recent ones spares most of the hashing. Bounded, so a stream of
# new words (ids, typos) costs at most a few megabytes.
@lru_cache(maxsize=16384)
def _word_buckets(word: str) -> tuple[int, tuple[int, ...]]:
    padded = f" {word} "
    chars = tuple(_bucket("c:" + padded[i : i + n]) for n in CHAR_NGRAMS for i in range(len(padded) - n + 1))
    return _bucket("w:" + word), chars


def hashed_ngrams(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Bucket indices and weights (log counts, unit length) of the message's n-grams."""
    lowered = normalise(text)
    words = _WORD.findall(lowered)
    buckets = [_word_buckets(word) for word in words]
    # Word unigrams and bigrams, then each word's character n-grams, counted in this order, so the weights are
    # summed in the same order at training and at run time.
    counts: Counter[int] = Counter(unigram for unigram, _ in buckets)
    counts.update(_bucket("w:" + words[i] + " " + words[i + 1]) for i in range(len(words) - 1))
    for _, chars in buckets:
        counts.update(chars)
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


@cache
def _vader():  # -> vaderSentiment.vaderSentiment.SentimentIntensityAnalyzer
    spec = importlib.util.find_spec("vaderSentiment")
    if spec is None or not spec.submodule_search_locations:
        raise FeatureError("the vaderSentiment package is not installed (pip install the pinned version)")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, expected in VADER_SHA256.items():
        path = root / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if digest != expected:
            raise FeatureError(f"{path}: sha256 {digest} is not the pinned {expected}")
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_features(text: str) -> np.ndarray:
    scores = _vader().polarity_scores(text)
    compound = float(scores["compound"])
    return np.asarray([scores["neg"], scores["pos"], max(0.0, -compound), max(0.0, compound)], dtype=np.float32)


def dense_features(text: str) -> np.ndarray:
    """The rules' reading and the sentiment scores (`DENSE_FEATURES`), beside the embedding."""
    return np.concatenate([rule_features(text), sentiment_features(text)])
