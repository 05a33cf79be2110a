"""Evaluation figures over replay records, checked against figures worked out by hand."""

from __future__ import annotations

import copy

import pytest

from baton.apps import evaluation


def rec(
    cid: str,
    escalated: bool,
    label: dict | None,
    *,
    urgency: str | None = None,
    at: int | None = None,
    nth: int | None = None,
    seconds: float | None = None,
    triggers: tuple[str, ...] = (),
) -> dict:
    """A record shaped like `baton replay` output (decisions left out where not needed)."""
    r: dict = {
        "conversation_id": cid,
        "escalated": escalated,
        "urgency": urgency,
        "at_message": at,
        "triggers": [{"id": t, "category": "behavioral"} for t in triggers],
        "decisions": [],
    }
    if escalated:
        r["messages_to_escalation"] = nth
        r["seconds_to_escalation"] = seconds
    if label is not None:
        r["label"] = label
    return r


# Nine records, eight labelled:
#   r1 TP  immediate (label immediate: right)  2nd customer message,  30 s  explicit_human_request
#   r2 TP  queued    (label immediate: wrong)  3rd,                   90 s  repeated_question, frustration_trend
#   r3 FP  queued                              1st,                    0 s  profanity
#   r4 FN  (label expects frustration_trend)
#   r5 TN
#   r6 TP  queued    (label gives no urgency)  4th,                  150 s  frustration_trend
#   r7 unlabelled, escalated on profanity: counts for nothing
#   r8 TP  immediate (label immediate: right)  1st,                    0 s  legal_threat
#   r9 FN
RECORDS = [
    rec(
        "r1",
        True,
        {"escalate": True, "urgency": "immediate", "triggers": ["explicit_human_request"]},
        urgency="immediate",
        at=2,
        nth=2,
        seconds=30,
        triggers=("explicit_human_request",),
    ),
    rec(
        "r2",
        True,
        {"escalate": True, "urgency": "immediate", "triggers": ["repeated_question"]},
        urgency="queued",
        at=4,
        nth=3,
        seconds=90,
        triggers=("repeated_question", "frustration_trend"),
    ),
    rec("r3", True, {"escalate": False}, urgency="queued", at=0, nth=1, seconds=0, triggers=("profanity",)),
    rec("r4", False, {"escalate": True, "urgency": "queued", "triggers": ["frustration_trend"]}),
    rec("r5", False, {"escalate": False}),
    rec("r6", True, {"escalate": True}, urgency="queued", at=6, nth=4, seconds=150, triggers=("frustration_trend",)),
    rec("r7", True, None, urgency="queued", at=2, nth=2, seconds=40, triggers=("profanity",)),
    rec(
        "r8",
        True,
        {"escalate": True, "urgency": "immediate"},
        urgency="immediate",
        at=0,
        nth=1,
        seconds=0,
        triggers=("legal_threat",),
    ),
    rec("r9", False, {"escalate": True}),
]


def test_confusion_precision_recall_f1() -> None:
    m = evaluation.confusion(RECORDS)
    # TP r1 r2 r6 r8; FP r3; FN r4 r9; TN r5; r7 is unlabelled.
    assert (m.tp, m.fp, m.fn, m.tn) == (4, 1, 2, 1)
    assert m.precision == pytest.approx(4 / 5)  # 4 / (4 + 1)
    assert m.recall == pytest.approx(4 / 6)  # 4 / (4 + 2)
    # 2PR / (P + R) = 2 * 8/15 / (22/15) = 8/11, the same as 2tp / (2tp + fp + fn) = 8 / 11.
    assert m.f1 == pytest.approx(8 / 11)


def test_undefined_ratios_are_zero() -> None:
    nothing = evaluation.confusion([rec("x", False, {"escalate": False})])
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)
    assert evaluation.confusion([rec("y", True, None, at=0, nth=1, seconds=0)]).total == 0


def test_per_trigger_precision_and_recall() -> None:
    stats = evaluation.trigger_stats(RECORDS)
    # frustration_trend fired in r2 and r6, both needed a human: 2/2. r4 expected it and it did not fire: 0/1.
    assert stats["frustration_trend"] == {
        "fired": 2,
        "necessary": 2,
        "precision": 1.0,
        "expected": 1,
        "caught": 0,
        "recall": 0.0,
    }
    # profanity fired in r3 (a false positive); r7 fired too but is unlabelled: 0/1; no label expects it.
    assert stats["profanity"]["fired"] == 1 and stats["profanity"]["precision"] == 0.0
    assert stats["profanity"]["recall"] is None
    assert stats["explicit_human_request"]["precision"] == 1.0 and stats["explicit_human_request"]["recall"] == 1.0
    assert stats["repeated_question"]["precision"] == 1.0 and stats["repeated_question"]["recall"] == 1.0
    assert stats["legal_threat"] == {
        "fired": 1,
        "necessary": 1,
        "precision": 1.0,
        "expected": 0,
        "caught": 0,
        "recall": None,
    }
    assert next(iter(stats)) == "frustration_trend"  # most fired first


def test_urgency_accuracy_among_true_positives() -> None:
    # TPs with a labelled urgency: r1 right, r2 wrong, r8 right (r6 has none) -> 2/3.
    assert evaluation.urgency_accuracy(RECORDS) == {"correct": 2, "total": 3, "accuracy": pytest.approx(2 / 3)}
    assert evaluation.urgency_accuracy([])["accuracy"] is None


def test_time_to_escalation_of_true_positives() -> None:
    timing = evaluation.time_to_escalation(RECORDS)
    assert timing["count"] == 4  # r1 r2 r6 r8
    # messages [2, 3, 4, 1] -> sorted [1, 2, 3, 4]: median (2 + 3) / 2 = 2.5; p90 rank ceil(0.9 * 4) = 4 -> 4.
    assert timing["messages"] == {"median": 2.5, "p90": 4.0}
    # seconds [30, 90, 150, 0] -> sorted [0, 30, 90, 150]: median (30 + 90) / 2 = 60; p90 -> 150.
    assert timing["seconds"] == {"median": 60.0, "p90": 150.0}


def test_percentiles() -> None:
    assert evaluation.p90(list(range(1, 11))) == 9  # rank ceil(9.0) = 9
    assert evaluation.p90(list(range(1, 12))) == 10  # rank ceil(9.9) = 10
    assert evaluation.p90([7]) == 7 and evaluation.p90([]) is None
    assert evaluation.median([3, 1, 2]) == 2 and evaluation.median([]) is None


def test_messages_to_escalation_falls_back_to_the_decisions() -> None:
    # Customer messages at 0, 2 and 4 (a rejected bot message at 1); escalated on the message at index 4: the 3rd.
    record = {
        "conversation_id": "old",
        "escalated": True,
        "at_message": 4,
        "triggers": [],
        "decisions": [
            {"message_index": 0, "action": "continue"},
            {"message_index": 1, "action": "rejected", "error": "role: ..."},
            {"message_index": 2, "action": "continue"},
            {"message_index": 4, "action": "escalate"},
            {"message_index": 6, "action": "escalate"},
        ],
    }
    assert evaluation.messages_to_escalation(record) == 3
    assert evaluation.messages_to_escalation({**record, "messages_to_escalation": 5}) == 5
    assert evaluation.messages_to_escalation({**record, "escalated": False, "at_message": None}) is None


def test_metrics_bundle() -> None:
    m = evaluation.metrics(RECORDS)
    assert m["conversations"] == 9 and m["escalated"] == 6 and m["labelled"] == 8
    assert m["confusion"] == {"tp": 4, "fp": 1, "fn": 2, "tn": 1}
    assert m["f1"] == pytest.approx(8 / 11)
    assert m["escalation_rate"] == pytest.approx(6 / 9)


def after_records() -> list[dict]:
    after = {r["conversation_id"]: copy.deepcopy(r) for r in RECORDS}
    # r2: earlier (message 4 -> 2), immediate now, frustration_trend no longer fires.
    after["r2"].update(
        urgency="immediate",
        at_message=2,
        messages_to_escalation=2,
        seconds_to_escalation=40,
        triggers=[{"id": "repeated_question", "category": "behavioral"}],
    )
    # r3 (a false positive) and r8 (a true positive) stop escalating; so does the unlabelled r7.
    for cid in ("r3", "r7", "r8"):
        after[cid] = rec(cid, False, after[cid].get("label"))
    # r4 (a false negative) now escalates.
    after["r4"] = rec(
        "r4", True, after["r4"]["label"], urgency="queued", at=4, nth=3, seconds=80, triggers=("frustration_trend",)
    )
    # r6: later (message 6 -> 8), and bot_loop fires as well.
    after["r6"].update(at_message=8, messages_to_escalation=5, seconds_to_escalation=200)
    after["r6"]["triggers"].append({"id": "bot_loop", "category": "behavioral"})
    return list(after.values())


def test_compare_lists_how_each_conversation_changed() -> None:
    result = evaluation.compare_records(RECORDS, after_records())
    changed = {c["conversation_id"]: c for c in result["changed"]}
    assert list(changed) == ["r2", "r3", "r4", "r6", "r7", "r8"]  # in input order; r1, r5, r9 unchanged
    assert changed["r2"]["change"] == ["urgency_changed", "escalated_earlier", "triggers_removed"]
    assert changed["r2"]["triggers_removed"] == ["frustration_trend"]
    assert "outcome" not in changed["r2"]  # right before, right after
    assert changed["r2"]["before"] == {
        "escalated": True,
        "urgency": "queued",
        "at_message": 4,
        "messages_to_escalation": 3,
        "seconds_to_escalation": 90,
        "triggers": ["repeated_question", "frustration_trend"],
    }
    assert changed["r2"]["after"]["at_message"] == 2 and changed["r2"]["after"]["urgency"] == "immediate"
    assert changed["r3"]["change"] == ["stopped_escalating"] and changed["r3"]["outcome"] == "improved"
    assert changed["r4"]["change"] == ["started_escalating"] and changed["r4"]["outcome"] == "improved"
    assert changed["r6"]["change"] == ["escalated_later", "triggers_added"]
    assert changed["r6"]["triggers_added"] == ["bot_loop"]
    assert changed["r7"]["change"] == ["stopped_escalating"]
    assert "label" not in changed["r7"] and "outcome" not in changed["r7"]
    assert changed["r8"]["outcome"] == "regressed" and changed["r8"]["label"]["urgency"] == "immediate"


def test_compare_metric_deltas_and_the_f1_gate() -> None:
    result = evaluation.compare_records(RECORDS, after_records())
    # After: TP r1 r2 r4 r6, FP none, FN r8 r9, TN r3 r5 -> P 1, R 4/6, F1 8 / (8 + 0 + 2) = 0.8.
    assert result["after"]["confusion"] == {"tp": 4, "fp": 0, "fn": 2, "tn": 2}
    delta = result["delta"]
    assert delta["precision"] == pytest.approx(1 - 4 / 5)
    assert delta["recall"] == pytest.approx(0)
    assert delta["f1"] == pytest.approx(0.8 - 8 / 11)
    assert delta["fp"] == -1 and delta["tn"] == 1
    # Urgency after: r1 right, r2 right (now immediate); r8 is no longer a TP -> 2/2; delta 1 - 2/3.
    assert delta["urgency_accuracy"] == pytest.approx(1 / 3)
    # Messages after over TPs r1 r2 r4 r6: [2, 2, 3, 5] -> median 2.5 (unchanged), p90 5 (was 4).
    assert delta["median_messages"] == 0 and delta["p90_messages"] == 1
    # profanity fired only before: no precision after, so no delta.
    assert delta["precision[profanity]"] is None and delta["precision[frustration_trend]"] == 0

    assert evaluation.f1_drop(result) == pytest.approx(8 / 11 - 0.8)  # F1 rose: a negative drop
    assert not evaluation.exceeds_f1_drop(result, 0.0)
    backwards = evaluation.compare_records(after_records(), RECORDS)
    assert evaluation.f1_drop(backwards) == pytest.approx(0.8 - 8 / 11)  # about 0.073
    assert evaluation.exceeds_f1_drop(backwards, 0.02)
    assert not evaluation.exceeds_f1_drop(backwards, 0.1)


def test_compare_identical_runs() -> None:
    result = evaluation.compare_records(RECORDS, copy.deepcopy(RECORDS))
    assert result["changed"] == []
    assert all(v in (0, None) for v in result["delta"].values())
    assert evaluation.f1_drop(result) == 0 and not evaluation.exceeds_f1_drop(result, 0.0)


def test_compare_needs_the_same_conversations() -> None:
    with pytest.raises(ValueError, match="only before \\['r9'\\]"):
        evaluation.compare_records(RECORDS, RECORDS[:-1])
    with pytest.raises(ValueError, match="duplicate"):
        evaluation.compare_records(RECORDS, [*RECORDS, RECORDS[0]])
