"""The classifier's training data: every source loads, matches its data card, is fully mapped, splits cleanly."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from baton.apps.model import mapping
from baton.apps.model.dataset import card_tables, load_all, normalise, split, text_key
from baton.apps.model.examples import Example
from baton.apps.model.labels import INTENTS, RESOLVED, TOPICS
from baton.apps.model.sources import FILES, HINT3_BOTS, LICENCE_FILES, LOADERS, SOURCES_DIR, nlupp_ontology
from baton.contract.messages import Intent

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "models" / "DATA.md"
SPLIT_NAMES = re.compile(r"(^|[^a-z])(test|dev|val|valid|validation|oos_test|oos_val)([^a-z]|$)", re.IGNORECASE)


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return load_all()


def _card() -> str:
    return CARD.read_text(encoding="utf-8")


def test_every_source_loads(examples: list[Example]) -> None:
    for name, load in LOADERS.items():
        rows = list(load(None))
        assert rows, name
        assert all(isinstance(e, Example) and e.text for e in rows), name
    sources = {e.source for e in examples}
    assert sources == {*(f"hint3/{bot}" for bot in HINT3_BOTS), "nlupp_hotels", "banking77", "clinc150", "goemotions"}
    for e in examples:
        if e.source == "goemotions":
            assert e.topic is None and e.intents == () and e.frustration is not None
        else:
            assert e.topic in TOPICS and e.frustration is None


def test_row_counts_match_the_data_card(examples: list[Example]) -> None:
    card = _card()
    block = card.split("<!-- counts:start -->\n", 1)[1].split("\n<!-- counts:end -->", 1)[0]
    assert block == card_tables(examples), "regenerate with `python -m baton.apps.model.dataset`"
    per_source = Counter(e.source.split("/")[0] for e in examples)
    table = dict(re.findall(r"^\| `(\w+)` \| \[.*\| (\d+) \|$", card, re.MULTILINE))
    assert {k: int(v) for k, v in table.items()} == dict(per_source)
    assert f"Total: {len(examples)} rows" in card


def test_known_totals(examples: list[Example]) -> None:
    counts = Counter(e.source for e in examples)
    assert counts == {
        "hint3/sofmattress": 328,
        "hint3/curekart": 599,
        "hint3/powerplay11": 471,
        "nlupp_hotels": 1009,
        "banking77": 10003,
        "clinc150": 15100,
        "goemotions": 43410,
    }


def _targets() -> list[mapping.Target]:
    tables = [*mapping.HINT3.values(), mapping.NLUPP_HOTELS, mapping.BANKING77, mapping.CLINC150]
    return [*(t for table in tables for t in table.values()), *mapping.HINT3_TEXT_OVERRIDES.values()]


def test_every_target_uses_baton_labels() -> None:
    for intents, topic in _targets():
        assert set(intents) <= set(INTENTS) and len(set(intents)) == len(intents)
        assert topic in TOPICS
    assert set(mapping.GOEMOTIONS_FRUSTRATION.values()) <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_every_source_label_is_mapped() -> None:
    # HINT3: the tables hold exactly each bot's labels; every override matches a row of its bot.
    rows: set[tuple[str, str]] = set()
    for bot in HINT3_BOTS:
        with (SOURCES_DIR / "hint3" / f"{bot}_train.csv").open(newline="", encoding="utf-8") as f:
            data = list(csv.reader(f))[1:]
        assert {row[1].strip() for row in data} == set(mapping.HINT3[bot]), bot
        rows |= {(bot, row[0].strip()) for row in data}
    assert set(mapping.HINT3_TEXT_OVERRIDES) <= rows, set(mapping.HINT3_TEXT_OVERRIDES) - rows

    # NLU++: every module in the data and every general or hotels module of the ontology, and no other.
    used = {m for i in range(20) for row in _json(f"nlupp_hotels/fold{i}.json") for m in row.get("intents", [])}
    ontology = {name for name, d in nlupp_ontology().items() if {"general", "hotels"} & set(d["domain"])}
    assert used <= ontology
    assert set(mapping.NLUPP_HOTELS) == ontology
    assert ontology >= mapping.NLUPP_REQUEST_MODULES

    # Banking77: the 77 categories, as listed and as used.
    with (SOURCES_DIR / "banking77" / "train.csv").open(newline="", encoding="utf-8") as f:
        used = {row["category"] for row in csv.DictReader(f)}
    assert used == set(_json("banking77/categories.json")) == set(mapping.BANKING77)
    assert len(mapping.BANKING77) == 77

    # CLINC150: the 150 intents of domains.json and "oos", as used.
    clinc = _json("clinc150/data_full_train.json")
    used = {label for part in clinc.values() for _, label in part}
    listed = {intent for intents in _json("clinc150/domains.json").values() for intent in intents}
    assert used == listed | {"oos"} == set(mapping.CLINC150)
    assert len(listed) == 150

    # GoEmotions: the 28 emotions.
    names = (SOURCES_DIR / "goemotions" / "labels.txt").read_text(encoding="utf-8").split()
    assert len(names) == 28 and set(names) == set(mapping.GOEMOTIONS_FRUSTRATION)


def _json(relative: str):
    return json.loads((SOURCES_DIR / relative).read_text(encoding="utf-8"))


def test_the_mapping_rules() -> None:
    assert mapping.BANKING77["request_refund"] == (("billing_dispute",), "billing")
    assert mapping.BANKING77["terminate_account"][0] == ("cancellation",)
    assert mapping.BANKING77["passcode_forgotten"] == ((), "account_access")
    assert mapping.BANKING77["card_arrival"] == ((), "shipping_orders")
    assert mapping.NLUPP_HOTELS["handoff"][0] == ("human_request",)
    assert mapping.CLINC150["oos"] == ((), "other")
    # NLU++: a thank alone is resolved, a thank with a request is not; the topic follows the priority.
    assert mapping.nlupp_target(["thank", "end_call"]) == ((RESOLVED,), "other")
    assert mapping.nlupp_target(["thank", "refund", "when"]) == (("billing_dispute",), "billing")
    assert mapping.nlupp_target(["refund", "wrong_notworking_notshowing"]) == (("billing_dispute",), "billing")
    assert mapping.nlupp_target(["wifi", "wrong_notworking_notshowing"]) == ((), "technical")
    assert mapping.nlupp_target([]) == ((), "other")
    # HINT3: an override wins over its label.
    assert mapping.hint3_target("powerplay11", "CHAT_WITH_AN_AGENT", "I do not need chat agent") == ((), "other")
    assert mapping.hint3_target("powerplay11", "CHAT_WITH_AN_AGENT", "Talk to an agent")[0] == ("human_request",)
    # GoEmotions: the largest value of the row's emotions.
    assert mapping.goemotions_frustration(["annoyance", "neutral"]) == 1.0
    assert mapping.goemotions_frustration(["sadness", "gratitude"]) == 0.5
    assert mapping.goemotions_frustration(["neutral"]) == 0.0


def test_labels_cover_the_contract_intents() -> None:
    assert {i.value for i in Intent} <= set(INTENTS)
    assert len(set(INTENTS)) == len(INTENTS) == 9 and len(set(TOPICS)) == len(TOPICS) == 6


def test_the_split_is_deterministic_and_disjoint_by_text(examples: list[Example]) -> None:
    train, held = split(examples)
    again_train, again_held = split(list(reversed(examples)))
    assert train == list(reversed(again_train)) and held == list(reversed(again_held))
    assert len(train) + len(held) == len(examples)
    assert {normalise(e.text) for e in train}.isdisjoint({normalise(e.text) for e in held})
    assert 0.18 < len(held) / len(examples) < 0.22
    for source in {e.source for e in examples}:
        n = sum(e.source == source for e in examples)
        assert 0.1 < sum(e.source == source for e in held) / n < 0.3, source
    assert split(examples, 0.0) == (examples, [])
    assert split(examples, 1.0) == ([], examples)


def test_variants_of_a_text_share_a_key() -> None:
    assert text_key("Cancel my order!") == text_key("  cancel   my ORDER") == text_key("Cancel, my order.")
    assert text_key("cancel my order") != text_key("cancel my orders")
    assert text_key("\uff23\uff41\uff4e\uff43\uff45\uff4c my order") == text_key("cancel my order")
    texts = [
        Example(t, "x", "y", (), "other", None) for t in ("I want a refund", "i want a refund!!", "I WANT A REFUND")
    ]
    train, held = split(texts)
    assert len(train) in (0, 3) and len(held) in (0, 3)


def _manifest() -> dict[str, str]:
    return dict((path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", _card(), re.MULTILINE))


def test_no_test_split_file_is_committed() -> None:
    present = sorted(p.relative_to(SOURCES_DIR).as_posix() for p in SOURCES_DIR.rglob("*") if p.is_file())
    expected = sorted(
        [*(f"{s}/{f}" for s, files in FILES.items() for f in files), *(f"{s}/{f}" for s, f in LICENCE_FILES.items())]
    )
    assert present == expected
    assert not [p for p in present if SPLIT_NAMES.search(Path(p).stem)]
    assert "data_full.json" not in {Path(p).name for p in present}
    assert set(_json("clinc150/data_full_train.json")) == {"train", "oos_train"}
    # The files are those the data card lists, byte for byte.
    digests = {p: hashlib.sha256((SOURCES_DIR / p).read_bytes()).hexdigest() for p in present}
    assert digests == _manifest()
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        tracked = subprocess.run(
            [git, "ls-files", "models/sources"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        assert not [p for p in tracked if SPLIT_NAMES.search(Path(p).stem)]
        assert not [
            p for p in tracked if p.startswith("models/sources/") and p[len("models/sources/") :] not in digests
        ]
