"""The team-written examples in models/written/: format, labels, counts, and train/eval separation."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from baton.apps.replay import read_transcripts

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "models" / "written"
TRAIN = WRITTEN / "train.jsonl"
EVAL_MESSAGES = WRITTEN / "eval_messages.jsonl"
EVAL_CONVERSATIONS = WRITTEN / "eval_conversations.jsonl"
GENERATOR = ROOT / "apps" / "model" / "written.py"

INTENTS = {
    "human_request",
    "contact_request",
    "legal_threat",
    "safety_or_distress",
    "data_deletion",
    "billing_dispute",
    "cancellation",
    "not_helping",
    "resolved",
}
RARE_INTENTS = (
    "human_request",
    "contact_request",
    "legal_threat",
    "safety_or_distress",
    "data_deletion",
    "not_helping",
    "resolved",
)
TOPICS = {"billing", "technical", "account_access", "data_privacy", "shipping_orders", "other"}
KINDS = {"positive", "hard_negative", "topic", "frustration"}
NEW_TRIGGERS = {"contact_request": "queued", "billing_near_renewal": "queued"}

# The issue's table: message, expected intents, expected topic (None: not fixed by the issue).
TABLE: list[tuple[str, set[str], str | None]] = [
    ("need to speak with a representative", {"human_request"}, None),
    ("I want to talk to executive", {"human_request"}, None),
    ("customer care executive pls", {"human_request"}, None),
    ("Chat with agnet", {"human_request"}, None),
    ("connect me to a human plz", {"human_request"}, None),
    ("can you call me back? 555 0100", {"contact_request"}, None),
    ("what is your customer care number", {"contact_request"}, None),
    ("If this is not fixed today my lawyer will be in touch", {"legal_threat"}, None),
    ("I'm panicking, payroll failed and my staff can't pay rent", {"safety_or_distress"}, None),
    ("Can you explain the line items on my invoice?", set(), "billing"),
    ("U r giving pathetic service", {"not_helping"}, None),
    ("waste of time", {"not_helping"}, None),
]
HIGH_FRUSTRATION = {"U r giving pathetic service", "waste of time"}


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def train() -> list[dict]:
    return _read_jsonl(TRAIN)


@pytest.fixture(scope="module")
def eval_messages() -> list[dict]:
    return _read_jsonl(EVAL_MESSAGES)


@pytest.fixture(scope="module")
def conversations() -> list[dict]:
    return _read_jsonl(EVAL_CONVERSATIONS)


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("written_examples_generator", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


def _policy_triggers() -> dict[str, str]:
    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text(encoding="utf-8"))
    return {t["id"]: t["urgency"] for t in policy["triggers"]} | NEW_TRIGGERS


@pytest.mark.parametrize("path", [TRAIN, EVAL_MESSAGES])
def test_message_files_parse_with_known_labels(path: Path) -> None:
    rows = _read_jsonl(path)
    assert rows
    for row in rows:
        assert set(row) == {"text", "intents", "topic", "frustration", "kind"}, row
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] and row["text"], row
        assert isinstance(row["intents"], list) and set(row["intents"]) <= INTENTS, row
        assert len(set(row["intents"])) == len(row["intents"]), row
        assert row["topic"] in TOPICS, row
        assert row["frustration"] is None or (
            isinstance(row["frustration"], int | float) and 0 <= row["frustration"] <= 1
        ), row
        assert row["kind"] in KINDS, row
        if row["kind"] == "positive":
            assert row["intents"], row
        if row["kind"] == "topic":
            assert not row["intents"], row


@pytest.mark.parametrize("path", [TRAIN, EVAL_MESSAGES])
def test_no_message_is_written_twice_in_a_file(path: Path) -> None:
    counts = Counter(normalise(r["text"]) for r in _read_jsonl(path))
    assert [t for t, n in counts.items() if n > 1] == []


def test_evaluation_texts_are_absent_from_training(
    train: list[dict], eval_messages: list[dict], conversations: list[dict]
) -> None:
    seen = {normalise(r["text"]) for r in train}
    evaluation = [r["text"] for r in eval_messages]
    evaluation += [m["text"] for c in conversations for m in c["messages"] if m["role"] == "customer"]
    assert [t for t in evaluation if normalise(t) in seen] == []


def test_training_counts_meet_the_minimums(train: list[dict]) -> None:
    positives = Counter(i for r in train if r["kind"] == "positive" for i in r["intents"])
    for intent in RARE_INTENTS:
        assert positives[intent] >= 120, (intent, positives[intent])
    for intent in ("billing_dispute", "cancellation"):
        assert positives[intent] >= 60, (intent, positives[intent])
    kinds = Counter(r["kind"] for r in train)
    assert kinds["hard_negative"] >= 300
    assert kinds["frustration"] >= 150
    topics = Counter(r["topic"] for r in train if r["kind"] == "topic")
    for topic in TOPICS:
        assert topics[topic] >= 20, (topic, topics[topic])


def test_frustration_examples_span_the_scale(train: list[dict], eval_messages: list[dict]) -> None:
    for rows, minimum in ((train, 20), (eval_messages, 8)):
        rated = [r["frustration"] for r in rows if r["kind"] == "frustration"]
        assert all(v is not None for v in rated)
        bands = Counter(min(int(v * 4), 3) for v in rated)
        assert all(bands[b] >= minimum for b in range(4)), bands


def test_hard_negatives_are_spread_over_the_intents(generator: ModuleType) -> None:
    for folder, minimum in (("train", 25), ("eval", 10)):
        written = generator.read_messages(generator.SOURCE / folder)
        near = Counter(m.near for m in written if m.kind == "hard_negative")
        for intent in INTENTS:
            assert near[intent] >= minimum, (folder, intent, near[intent])
        # a hard negative never carries the intent it was written to resemble
        assert all(m.near not in m.intents for m in written if m.kind == "hard_negative")


def test_a_share_of_messages_is_code_mixed_or_not_english(generator: ModuleType) -> None:
    for folder in ("train", "eval"):
        written = generator.read_messages(generator.SOURCE / folder)
        languages = Counter(m.language for m in written if m.language)
        # English first, as the traffic Baton is built for, with room for the other languages customers write in.
        assert 0.08 <= sum(languages.values()) / len(written) <= 0.25
        assert set(languages) == {"hi", "es", "pt", "fr", "de"}


def test_evaluation_messages_cover_each_intent(eval_messages: list[dict], generator: ModuleType) -> None:
    written = generator.read_messages(generator.SOURCE / "eval")
    for intent in INTENTS:
        positives = sum(1 for m in written if m.kind == "positive" and intent in m.intents)
        negatives = sum(1 for m in written if m.kind == "hard_negative" and m.near == intent)
        assert positives >= 20 and negatives >= 10 and 40 <= positives + negatives <= 65, (intent, positives, negatives)
    kinds = Counter(r["kind"] for r in eval_messages)
    assert kinds["topic"] >= 30 and kinds["frustration"] >= 40
    topics = Counter(r["topic"] for r in eval_messages if r["kind"] == "topic")
    assert all(topics[t] >= 5 for t in TOPICS), topics


@pytest.mark.parametrize(("text", "intents", "topic"), TABLE)
def test_issue_table_messages_are_in_the_evaluation_set(
    eval_messages: list[dict], conversations: list[dict], text: str, intents: set[str], topic: str | None
) -> None:
    rows = [r for r in eval_messages if r["text"] == text]
    assert len(rows) == 1, text
    row = rows[0]
    assert set(row["intents"]) == intents
    if topic:
        assert row["topic"] == topic
    if text in HIGH_FRUSTRATION:
        assert row["frustration"] is not None and row["frustration"] >= 0.7
    customer_texts = {m["text"] for c in conversations for m in c["messages"] if m["role"] == "customer"}
    assert text in customer_texts, "each table message also has its own conversation"


def test_conversations_replay_and_use_known_triggers(conversations: list[dict]) -> None:
    parsed = read_transcripts(EVAL_CONVERSATIONS.read_text(encoding="utf-8").splitlines(), EVAL_CONVERSATIONS.name)
    assert 40 <= len(parsed) <= 60
    triggers = _policy_triggers()
    for conv in conversations:
        label = conv["label"]
        assert isinstance(label["escalate"], bool), conv["conversation_id"]
        assert conv["messages"][0]["role"] == "customer"
        if label["escalate"]:
            assert label["urgency"] in ("immediate", "queued"), conv["conversation_id"]
            assert label["triggers"] and set(label["triggers"]) <= set(triggers), conv["conversation_id"]
            # the urgency is the most urgent of the expected triggers
            expected = "immediate" if any(triggers[t] == "immediate" for t in label["triggers"]) else "queued"
            if conv["customer"].get("tier") != "free":
                assert label["urgency"] == expected, conv["conversation_id"]
        else:
            assert not label.get("triggers") and "urgency" not in label, conv["conversation_id"]


def test_conversations_cover_the_required_cases(conversations: list[dict]) -> None:
    by_trigger = Counter(t for c in conversations for t in c["label"].get("triggers", []))
    assert by_trigger["contact_request"] >= 2 and by_trigger["billing_near_renewal"] >= 1
    assert sum(1 for c in conversations if not c["label"]["escalate"]) >= 15

    rising = [c for c in conversations if c["label"].get("triggers") and "frustration_trend" in c["label"]["triggers"]]
    assert rising
    for conv in rising:
        assert "explicit_human_request" not in conv["label"]["triggers"]
        assert 3 <= sum(1 for m in conv["messages"] if m["role"] == "customer") <= 5

    renewal = [c for c in conversations if "billing_near_renewal" in c["label"].get("triggers", [])]
    for conv in renewal:
        started = datetime.fromisoformat(conv["started_at"].replace("Z", "+00:00")).date()
        assert date.fromisoformat(conv["customer"]["renewal_date"]) - started == timedelta(days=10)
        assert conv["label"]["urgency"] == "queued"
        question = [m["text"] for m in conv["messages"]]
        twins = [
            c
            for c in conversations
            if c is not conv and [m["text"] for m in c["messages"]] == question and not c["label"]["escalate"]
        ]
        assert twins, "the same question from a new self-serve user is not escalated"
        assert all(t["customer"].get("tier") == "free" and "account_created_at" in t["customer"] for t in twins)


def test_committed_files_equal_the_generator_output(generator: ModuleType) -> None:
    for path, text in generator.build().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name}: run python apps/model/written.py"
