"""All training sources as one list, and a deterministic train / held-out split.

The split has no randomness: a row goes to the held-out part when the SHA-256 of its normalised text
falls in the first `held_out` fraction of the hash space, so the same text (also with other case,
punctuation or spacing, or from another source) always lands on the same side, and the split never
changes when rows are added or reordered.

`python -m baton.apps.model.dataset` prints the count tables of `models/DATA.md`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from baton.apps.model.examples import Example
from baton.apps.model.labels import INTENTS, TOPICS
from baton.apps.model.sources import LOADERS

HELD_OUT = 0.2
_NOT_WORD = re.compile(r"[\W_]+")


def load_all(root: Path | None = None) -> list[Example]:
    """Every row of every source, in a fixed order (sources as in `LOADERS`, rows as in their files)."""
    return [example for load in LOADERS.values() for example in load(root)]


def normalise(text: str) -> str:
    """The text the split keys on: NFKC, case-folded, runs of non-word characters as one space, stripped."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_key(text: str) -> str:
    """SHA-256 (hex) of the normalised text."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def _position(text: str) -> float:
    """Where the text falls in [0, 1): the first 64 bits of its key."""
    return int(text_key(text)[:16], 16) / 2**64


def split(examples: Iterable[Example], held_out: float = HELD_OUT) -> tuple[list[Example], list[Example]]:
    """(train, held_out), each in input order; a normalised text is always on one side only."""
    if not 0.0 <= held_out <= 1.0:
        raise ValueError(f"held_out must be in [0, 1], not {held_out}")
    train: list[Example] = []
    held: list[Example] = []
    for example in examples:
        (held if _position(example.text) < held_out else train).append(example)
    return train, held


def label_counts(examples: Sequence[Example]) -> dict[str, Counter[str]]:
    """Counts by source, by intent, by topic (None as "unlabelled") and of rows with a frustration score."""
    by_source: Counter[str] = Counter(e.source for e in examples)
    by_intent: Counter[str] = Counter({intent: 0 for intent in INTENTS})
    by_topic: Counter[str] = Counter({topic: 0 for topic in (*TOPICS, "unlabelled")})
    frustration: Counter[str] = Counter()
    for e in examples:
        by_intent.update(e.intents)
        by_topic[e.topic or "unlabelled"] += 1
        if e.frustration is not None:
            frustration[f"{e.frustration:g}"] += 1
    return {"source": by_source, "intent": by_intent, "topic": by_topic, "frustration": frustration}


def _table(title: str, columns: dict[str, Counter[str]], keys: Sequence[str]) -> list[str]:
    lines = [f"| {title} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| `{k}` | " + " | ".join(str(c[k]) for c in columns.values()) + " |" for k in keys]
    return lines


def card_tables(examples: Sequence[Example], held_out: float = HELD_OUT) -> str:
    """The count tables of the data card: per source, and over all rows, the train part and the held-out part."""
    train, held = split(examples, held_out)
    totals = {"all": label_counts(examples), "train": label_counts(train), "held-out": label_counts(held)}
    sources = sorted(totals["all"]["source"])
    per_source = {s: label_counts([e for e in examples if e.source == s]) for s in sources}
    frustration = sorted(totals["all"]["frustration"], key=float)
    out = _table("source", {name: counts["source"] for name, counts in totals.items()}, sources)
    for kind, keys in (("intent", INTENTS), ("topic", (*TOPICS, "unlabelled"))):
        columns = {s: counts[kind] for s, counts in per_source.items()}
        columns |= {name: counts[kind] for name, counts in totals.items()}
        out += ["", *_table(kind, columns, keys)]
    out += ["", *_table("frustration", {name: counts["frustration"] for name, counts in totals.items()}, frustration)]
    rows = ", ".join(f"{name} {sum(counts['source'].values())}" for name, counts in totals.items())
    return "\n".join([*out, "", f"Rows: {rows}."])


def main() -> None:
    print(card_tables(load_all()))


if __name__ == "__main__":
    main()
