"""Build the team-written examples in models/written/ from their hand-written sources.

The sources are plain text, one message a line, written by people (no paraphrasing
model, no sampling); this script only turns them into JSONL and counts them, so that
the committed files are always exactly its output:

    python apps/model/written.py            # rewrite the JSONL files and README counts
    python apps/model/written.py --check    # exit 1 if a committed file differs

Message sources live in ``models/written/source/train/`` and ``models/written/source/eval/``,
one file per kind (and intent), named ``<kind>.<intent>.txt`` or ``<kind>.txt``. A line is

    <topic> <frustration> [+<intent code> ...] [~<language>] : <text>

``topic`` is one of the short names below, ``frustration`` a number in [0, 1] or ``-``
for unrated, ``+xx`` adds an intent, ``~xx`` marks a message that is not (only) English.
In a ``positive.<intent>.txt`` file that intent is always added; in a
``hard_negative.<intent>.txt`` file the intent names only what the message resembles and
is never added. Blank lines and lines starting with ``#`` are skipped.

Whole conversations come from ``source/eval/conversations.yaml`` and are written in the
format of ``examples/labelled.jsonl``.

Evaluation files are never used for training; ``build`` refuses to write when an
evaluation text also appears in the training file (after lowercasing and folding
whitespace).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = ROOT / "models" / "written"
SOURCE = WRITTEN / "source"
TRAIN = WRITTEN / "train.jsonl"
EVAL_MESSAGES = WRITTEN / "eval_messages.jsonl"
EVAL_CONVERSATIONS = WRITTEN / "eval_conversations.jsonl"
README = WRITTEN / "README.md"
COUNTS_START = "<!-- counts: written by apps/model/written.py -->"
COUNTS_END = "<!-- /counts -->"

INTENTS = (
    "human_request",
    "contact_request",
    "legal_threat",
    "safety_or_distress",
    "data_deletion",
    "billing_dispute",
    "cancellation",
    "not_helping",
    "resolved",
)
TOPICS = ("billing", "technical", "account_access", "data_privacy", "shipping_orders", "other")
KINDS = ("positive", "hard_negative", "topic", "frustration")
INTENT_CODES = {
    "hr": "human_request",
    "cr": "contact_request",
    "lt": "legal_threat",
    "sd": "safety_or_distress",
    "dd": "data_deletion",
    "bd": "billing_dispute",
    "ca": "cancellation",
    "nh": "not_helping",
    "rs": "resolved",
}
TOPIC_CODES = {
    "bil": "billing",
    "tec": "technical",
    "acc": "account_access",
    "dat": "data_privacy",
    "shp": "shipping_orders",
    "oth": "other",
}
LANGUAGES = {"hi": "Hinglish", "es": "Spanish", "pt": "Portuguese", "fr": "French", "de": "German"}
LINE = re.compile(r"^(?P<meta>[^:]+?)\s:\s(?P<text>.+)$")


class SourceError(ValueError):
    pass


@dataclass(frozen=True)
class Written:
    text: str
    intents: tuple[str, ...]
    topic: str
    frustration: float | None
    kind: str
    near: str | None  # the intent a positive or hard negative was written for
    language: str | None

    def record(self) -> dict[str, object]:
        return {
            "text": self.text,
            "intents": list(self.intents),
            "topic": self.topic,
            "frustration": self.frustration,
            "kind": self.kind,
        }


def normalise(text: str) -> str:
    """The form in which texts are compared across files: lowercase, whitespace folded."""
    return " ".join(text.lower().split())


def _parse_line(line: str, kind: str, near: str | None, where: str) -> Written:
    match = LINE.match(line)
    if not match:
        raise SourceError(f"{where}: expected '<topic> <frustration> [+intent] [~lang] : <text>'")
    topic_code, frustration_text, *extra = match["meta"].split()
    if topic_code not in TOPIC_CODES:
        raise SourceError(f"{where}: unknown topic '{topic_code}'")
    if frustration_text == "-":
        frustration = None
    else:
        frustration = float(frustration_text)
        if not 0 <= frustration <= 1:
            raise SourceError(f"{where}: frustration {frustration} outside [0, 1]")
    intents = [near] if kind == "positive" and near else []
    language = None
    for token in extra:
        if token.startswith("+") and token[1:] in INTENT_CODES:
            intent = INTENT_CODES[token[1:]]
            if intent in intents:
                raise SourceError(f"{where}: intent '{intent}' given twice")
            intents.append(intent)
        elif token.startswith("~") and token[1:] in LANGUAGES:
            language = token[1:]
        else:
            raise SourceError(f"{where}: unknown token '{token}'")
    ordered = tuple(i for i in INTENTS if i in intents)
    return Written(match["text"].strip(), ordered, TOPIC_CODES[topic_code], frustration, kind, near, language)


def read_messages(folder: Path) -> list[Written]:
    """Every message under a source folder, in file-name then line order."""
    found: list[Written] = []
    for path in sorted(folder.glob("*.txt")):
        kind, _, near = path.stem.partition(".")
        if kind not in KINDS or (near and near not in INTENTS) or (kind in ("positive", "hard_negative") and not near):
            raise SourceError(f"{path.name}: name must be <kind>.<intent>.txt or topic.txt / frustration.txt")
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.strip()
            if line and not line.startswith("#"):
                found.append(_parse_line(line, kind, near or None, f"{path.relative_to(ROOT)}:{number}"))
    seen: dict[str, int] = {}
    for index, item in enumerate(found):
        key = normalise(item.text)
        if key in seen:
            raise SourceError(f"{folder.relative_to(ROOT)}: '{item.text}' is written twice")
        seen[key] = index
    return found


def read_conversations(path: Path) -> list[dict[str, object]]:
    conversations = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for conv in conversations:
        record = {
            "conversation_id": conv["conversation_id"],
            "customer": conv["customer"],
            "channel": conv.get("channel", "chat"),
            "started_at": conv["started_at"],
            "messages": [
                {"role": role, "text": text} | ({"at": m["at"]} if "at" in m else {})
                for m in conv["messages"]
                for role, text in ((("customer", m["customer"]) if "customer" in m else ("bot", m["bot"])),)
            ],
            "label": conv["label"],
        }
        if "note" in conv:
            record["note"] = conv["note"]
        out.append(record)
    return out


def _jsonl(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)


def overlaps(train: list[Written], evaluation: list[str]) -> list[str]:
    texts = {normalise(t.text) for t in train}
    return [t for t in evaluation if normalise(t) in texts]


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _band(value: float | None) -> str:
    if value is None:
        return "unrated"
    if value < 0.25:
        return "calm (< 0.25)"
    if value < 0.5:
        return "mild (0.25-0.5)"
    if value < 0.75:
        return "annoyed (0.5-0.75)"
    return "angry (>= 0.75)"


def counts_markdown(train: list[Written], messages: list[Written], conversations: list[dict[str, object]]) -> str:
    def per_intent(items: list[Written]) -> tuple[Counter[str], Counter[str], Counter[str]]:
        positive = Counter(i for m in items if m.kind == "positive" for i in m.intents)
        written_for = Counter(m.near for m in items if m.kind == "hard_negative" and m.near)
        anywhere = Counter(i for m in items for i in m.intents)
        return positive, written_for, anywhere

    tp, tn, ta = per_intent(train)
    ep, en, ea = per_intent(messages)
    lines = [COUNTS_START, "", "Messages per intent (a message with two intents counts for both):", ""]
    lines += _table(
        (
            "intent",
            "train positives",
            "train hard negatives written for it",
            "train total with intent",
            "eval positives",
            "eval hard negatives",
            "eval total with intent",
        ),
        [(f"`{i}`", tp[i], tn[i], ta[i], ep[i], en[i], ea[i]) for i in INTENTS],
    )
    lines += ["", "Messages per kind, topic, frustration band and language:", ""]
    kinds_train, kinds_eval = Counter(m.kind for m in train), Counter(m.kind for m in messages)
    rows: list[tuple[object, ...]] = [(f"kind `{k}`", kinds_train[k], kinds_eval[k]) for k in KINDS]
    topic_train, topic_eval = Counter(m.topic for m in train), Counter(m.topic for m in messages)
    rows += [(f"topic `{t}`", topic_train[t], topic_eval[t]) for t in TOPICS]
    bands = ("calm (< 0.25)", "mild (0.25-0.5)", "annoyed (0.5-0.75)", "angry (>= 0.75)", "unrated")
    band_train = Counter(_band(m.frustration) for m in train)
    band_eval = Counter(_band(m.frustration) for m in messages)
    rows += [(f"frustration {b}", band_train[b], band_eval[b]) for b in bands]
    no_intent_train = sum(1 for m in train if not m.intents)
    no_intent_eval = sum(1 for m in messages if not m.intents)
    rows.append(("no intent at all", no_intent_train, no_intent_eval))
    lang_train, lang_eval = Counter(m.language for m in train), Counter(m.language for m in messages)
    rows += [(f"language: {name}", lang_train[code], lang_eval[code]) for code, name in LANGUAGES.items()]
    share_train = sum(lang_train[c] for c in LANGUAGES) / len(train)
    share_eval = sum(lang_eval[c] for c in LANGUAGES) / len(messages)
    rows.append(("not (only) English", f"{share_train:.0%}", f"{share_eval:.0%}"))
    rows.append(("**all messages**", len(train), len(messages)))
    lines += _table(("", "train.jsonl", "eval_messages.jsonl"), rows)
    escalate = Counter(bool(c["label"]["escalate"]) for c in conversations)  # type: ignore[index]
    triggers = Counter(t for c in conversations for t in c["label"].get("triggers", []))  # type: ignore[attr-defined]
    urgency = Counter(c["label"].get("urgency") for c in conversations if c["label"]["escalate"])  # type: ignore[attr-defined,index]
    lines += [
        "",
        f"Conversations in `eval_conversations.jsonl`: {len(conversations)}; "
        f"escalate: {escalate[True]} (immediate {urgency['immediate']}, queued {urgency['queued']}), "
        f"do not escalate: {escalate[False]}. Expected triggers:",
        "",
    ]
    lines += _table(("trigger", "conversations"), [(f"`{t}`", n) for t, n in sorted(triggers.items())])
    lines += ["", COUNTS_END]
    return "\n".join(lines)


def build() -> dict[Path, str]:
    """The text of every generated file (and of the README with its counts block)."""
    train = read_messages(SOURCE / "train")
    messages = read_messages(SOURCE / "eval")
    conversations = read_conversations(SOURCE / "eval" / "conversations.yaml")
    eval_texts = [m.text for m in messages] + [
        m["text"]  # type: ignore[index]
        for c in conversations
        for m in c["messages"]  # type: ignore[attr-defined]
        if m["role"] == "customer"
    ]
    shared = overlaps(train, eval_texts)
    if shared:
        raise SourceError("evaluation texts also in train: " + "; ".join(shared))
    outputs = {
        TRAIN: _jsonl([m.record() for m in train]),
        EVAL_MESSAGES: _jsonl([m.record() for m in messages]),
        EVAL_CONVERSATIONS: _jsonl(conversations),
    }
    if README.exists():
        readme = README.read_text(encoding="utf-8")
        start, end = readme.find(COUNTS_START), readme.find(COUNTS_END)
        if start >= 0 and end > start:
            outputs[README] = (
                readme[:start] + counts_markdown(train, messages, conversations) + readme[end + len(COUNTS_END) :]
            )
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the sources")
    args = parser.parse_args(argv)
    try:
        outputs = build()
    except SourceError as err:
        print(err, file=sys.stderr)
        return 1
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} differs from its sources; run python apps/model/written.py", file=sys.stderr
            )
        return 1 if stale else 0
    for path in stale:
        path.write_text(outputs[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
