"""One loader per training source, reading the files committed under `models/sources/`.

Each loader yields every row of its files as an `Example` with Baton's labels (`mapping`); none drops a
row. Only the standard library is used. `FILES` lists the files each source keeps; nothing else belongs
under `models/sources/`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from baton.apps.model.examples import Example
from baton.apps.model.mapping import (
    BANKING77,
    CLINC150,
    goemotions_frustration,
    hint3_target,
    nlupp_target,
)

SOURCES_DIR = Path(__file__).resolve().parents[2] / "models" / "sources"

HINT3_BOTS: tuple[str, ...] = ("sofmattress", "curekart", "powerplay11")
NLUPP_FOLDS = 20

LICENCE_FILES: dict[str, str] = {
    "hint3": "LICENSE.md",
    "nlupp_hotels": "LICENSE",
    "banking77": "LICENSE",
    "clinc150": "LICENSE",
    "goemotions": "LICENSE",
}

FILES: dict[str, tuple[str, ...]] = {
    "hint3": tuple(f"{bot}_train.csv" for bot in HINT3_BOTS),
    "nlupp_hotels": (*(f"fold{i}.json" for i in range(NLUPP_FOLDS)), "ontology.json"),
    "banking77": ("train.csv", "categories.json"),
    "clinc150": ("data_full_train.json", "domains.json"),
    "goemotions": ("train.tsv", "labels.txt"),
}


def _dir(name: str, root: Path | None) -> Path:
    return (root or SOURCES_DIR) / name


def load_hint3(root: Path | None = None) -> Iterator[Example]:
    """HINT3 v2 train CSVs (`sentence,label`; powerplay11 has a trailing empty column)."""
    for bot in HINT3_BOTS:
        with (_dir("hint3", root) / f"{bot}_train.csv").open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader)
            if header[:2] != ["sentence", "label"]:
                raise ValueError(f"hint3/{bot}: unexpected header {header}")
            for row in reader:
                text, label = row[0].strip(), row[1].strip()
                intents, topic = hint3_target(bot, label, text)
                yield Example(text, f"hint3/{bot}", label, intents, topic, None)


def nlupp_ontology(root: Path | None = None) -> dict[str, dict]:
    """The NLU++ intent modules ({name: {"description", "domain"}}), banking ones included."""
    return json.loads((_dir("nlupp_hotels", root) / "ontology.json").read_text(encoding="utf-8"))["intents"]


def load_nlupp_hotels(root: Path | None = None) -> Iterator[Example]:
    """NLU++ hotels, all 20 folds (rows without an "intents" field have no module)."""
    for i in range(NLUPP_FOLDS):
        rows = json.loads((_dir("nlupp_hotels", root) / f"fold{i}.json").read_text(encoding="utf-8"))
        for row in rows:
            modules = row.get("intents", [])
            intents, topic = nlupp_target(modules)
            yield Example(row["text"].strip(), "nlupp_hotels", ",".join(modules), intents, topic, None)


def load_banking77(root: Path | None = None) -> Iterator[Example]:
    """Banking77 train split (`text,category`)."""
    with (_dir("banking77", root) / "train.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            intents, topic = BANKING77[row["category"]]
            yield Example(row["text"].strip(), "banking77", row["category"], intents, topic, None)


def load_clinc150(root: Path | None = None) -> Iterator[Example]:
    """CLINC150 "train" then "oos_train" (the only parts committed)."""
    data = json.loads((_dir("clinc150", root) / "data_full_train.json").read_text(encoding="utf-8"))
    for part in ("train", "oos_train"):
        for text, label in data[part]:
            intents, topic = CLINC150[label]
            yield Example(text.strip(), "clinc150", label, intents, topic, None)


def goemotions_labels(root: Path | None = None) -> list[str]:
    """The 28 emotion names, in the order their ids index."""
    text = (_dir("goemotions", root) / "labels.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_goemotions(root: Path | None = None) -> Iterator[Example]:
    """GoEmotions train.tsv (text, comma-separated emotion ids, comment id; no header): frustration only."""
    names = goemotions_labels(root)
    with (_dir("goemotions", root) / "train.tsv").open(encoding="utf-8", newline="") as f:
        for line in f:
            text, ids, _comment_id = line.rstrip("\r\n").split("\t")
            emotions = [names[int(i)] for i in ids.split(",")]
            yield Example(text.strip(), "goemotions", ",".join(emotions), (), None, goemotions_frustration(emotions))


LOADERS: dict[str, Callable[[Path | None], Iterator[Example]]] = {
    "hint3": load_hint3,
    "nlupp_hotels": load_nlupp_hotels,
    "banking77": load_banking77,
    "clinc150": load_clinc150,
    "goemotions": load_goemotions,
}
