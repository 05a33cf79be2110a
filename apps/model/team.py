"""The team's own examples (models/written/) as training or evaluation rows.

`train.jsonl` is used for training; `eval_messages.jsonl` only by `baton model eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

from baton.apps.model.examples import Example
from baton.apps.model.labels import OTHER

REPOSITORY = Path(__file__).resolve().parents[2]
TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval_messages.jsonl"


def written_dir(root: Path | None = None) -> Path:
    return (root or REPOSITORY) / "models" / "written"


def load_team_examples(root: Path | None = None, name: str = TRAIN_FILE) -> list[Example]:
    """Rows of one of the team's files; a row without a topic counts as topic `other`, labelled for intents."""
    path = written_dir(root) / name
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        rows.append(
            Example(
                text=record["text"],
                source="written",
                source_label=f"{name}:{number}:{record.get('kind', '')}",
                intents=tuple(record.get("intents") or ()),
                topic=record.get("topic") or OTHER,
                frustration=record.get("frustration"),
            )
        )
    return rows
