"""Real customer wording, decided as a support team expects, through `baton replay` and the real workflow.

The conversations are the team's evaluation suite (models/written/eval_conversations.jsonl), never used
for training: every row of the table the classifier was built for, plus negations, mentions, quoting
and the billing-near-renewal pair.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path("models/written/eval_conversations.jsonl")
# Rows the shipped model still decides wrongly: listed, so that a model that fixes one fails this test
# until the row is moved back (strict), and the gap stays visible.
KNOWN_MISSES: dict[str, str] = {}
TABLE = (
    "wr-table-representative",
    "wr-table-executive",
    "wr-table-care-executive",
    "wr-table-agnet",
    "wr-table-human-plz",
    "wr-table-callback",
    "wr-table-care-number",
    "wr-table-lawyer",
    "wr-table-payroll-panic",
    "wr-table-line-items",
    "wr-table-pathetic",
    "wr-table-waste-of-time",
    "wr-billing-near-renewal",
    "wr-billing-self-serve-new",
)


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("understanding") / "records.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "replay", str(SUITE), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return {r["conversation_id"]: r for r in map(json.loads, out.read_text().splitlines())}


@pytest.mark.parametrize(
    "conversation_id",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[c])) if c in KNOWN_MISSES else c
        for c in TABLE
    ],
)
def test_the_table_is_decided_as_expected(decided: dict[str, dict], conversation_id: str) -> None:
    record = decided[conversation_id]
    label = record["label"]
    fired = [t["id"] for t in record["triggers"]]
    assert record["escalated"] == label["escalate"], (fired, record["decisions"])
    if label["escalate"]:
        assert record["urgency"] == label["urgency"], fired
        assert set(label["triggers"]) & set(fired), fired


def test_negations_mentions_and_quotes_stay_with_the_bot(decided: dict[str, dict]) -> None:
    kept = [
        c for c in decided if c.startswith(("wr-neg-", "wr-mention-", "wr-quote-", "wr-hypothetical-", "wr-sense-"))
    ]
    assert len(kept) >= 12
    wrongly = {c: [t["id"] for t in decided[c]["triggers"]] for c in kept if decided[c]["escalated"]}
    # Known false escalation of the shipped model, kept visible: a negated threat ("I'm not threatening to
    # sue") reads as distress.
    assert wrongly == {"wr-neg-not-suing": ["severe_distress"]}
