"""Candidates for each trigger's threshold, and the choice among them.

What can be tuned, per condition (policies/schema.py):

- ``intent`` and ``topic``: ``min_probability``, the classifier's probability the message needs for the trigger
  to fire. Candidates are the probabilities recorded on the labelled messages (cut to two places) and the
  hundredth above each, so every candidate moves at least one message across the line.
- ``frustration_trend``, ``high_value``, ``at_risk``: the score ``threshold``, from 0.05 to 1 by 0.05.
- ``repeated_question``, ``bot_repeating``, ``unresolved_turns``: the count ``threshold``, from its least
  allowed value to five above the current one.
- ``marker`` has nothing to tune.

One trigger is varied at a time, the others held as they are. The choice for a trigger:

- with a target precision: among the candidates where the trigger's own precision (labelled conversations it
  fired in that needed a human / all it fired in) reaches the target, the one with the best overall F1;
  when none reaches it, the best overall F1, said as such;
- without one: the best overall F1.

Ties go to the value nearest the current one, so a proposal never moves further than the evidence asks. A
trigger is proposed only when its best value differs from the current one and improves what was asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from baton.apps.evaluation import Confusion, confusion, trigger_stats
from baton.apps.replay.records import ReplayRecord
from baton.apps.tune.conversations import ScoredConversation
from baton.apps.tune.decide import decide_all
from baton.policies.schema import COUNT_CONDITIONS, IntentCondition, Policy, TopicCondition, Trigger

SCORE_STEP = 0.05
COUNT_RANGE_ABOVE = 5
MAX_EXAMPLES = 3
# The least value each count condition allows (policies/schema.py).
COUNT_FLOOR = {"repeated_question": 2, "bot_repeating": 2, "unresolved_turns": 1}


@dataclass(frozen=True)
class TriggerCounts:
    """One trigger over the labelled conversations: where it fired, and how many of those needed a human."""

    fired: int
    necessary: int

    @property
    def unnecessary(self) -> int:
        return self.fired - self.necessary

    @property
    def precision(self) -> float | None:
        return self.necessary / self.fired if self.fired else None


@dataclass(frozen=True)
class Example:
    conversation_id: str
    message_id: str | None
    text: str
    score: str  # the recorded score the threshold reads
    expected: bool  # the label: did it need a human


@dataclass(frozen=True)
class Proposal:
    trigger: str
    parameter: str  # "threshold" or "min_probability"
    current: float | int | None
    proposed: float | int
    target_met: bool | None  # None without a target precision
    before: TriggerCounts
    after: TriggerCounts
    overall_before: Confusion
    overall_after: Confusion
    no_longer_fired: list[Example] = field(default_factory=list)  # labelled conversations it stops escalating
    newly_fired: list[Example] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def counts(c: TriggerCounts) -> dict[str, Any]:
            return {"fired": c.fired, "necessary": c.necessary, "unnecessary": c.unnecessary, "precision": c.precision}

        def overall(c: Confusion) -> dict[str, Any]:
            return {**c.as_dict(), "precision": c.precision, "recall": c.recall, "f1": c.f1}

        return {
            "trigger": self.trigger,
            "parameter": self.parameter,
            "current": self.current,
            "proposed": self.proposed,
            "target_met": self.target_met,
            "before": counts(self.before),
            "after": counts(self.after),
            "overall_before": overall(self.overall_before),
            "overall_after": overall(self.overall_after),
            "no_longer_fired": [e.__dict__ for e in self.no_longer_fired],
            "newly_fired": [e.__dict__ for e in self.newly_fired],
        }


def tunable(trigger: Trigger) -> str | None:
    """The parameter of the trigger's condition that tune moves, or None."""
    when = trigger.when
    if isinstance(when, IntentCondition | TopicCondition):
        return "min_probability"
    return "threshold" if hasattr(when, "threshold") else None


def current_value(trigger: Trigger) -> float | int | None:
    parameter = tunable(trigger)
    return None if parameter is None else getattr(trigger.when, parameter)


def _recorded_probabilities(trigger: Trigger, conversations: Sequence[ScoredConversation]) -> set[float]:
    when = trigger.when
    found: set[float] = set()
    for conv in conversations:
        for m in conv.messages:
            s = m.signals
            if s is None:
                continue
            if isinstance(when, IntentCondition) and when.intent in s.intents:
                p = s.probabilities.get(when.intent)
            elif isinstance(when, TopicCondition) and s.topic in when.topics:
                p = s.topic_probability
            else:
                continue
            if p is not None:
                # The value itself (the message still fires) and the next above it (it no longer does).
                at = max(0.01, math.floor(p * 100) / 100)
                found |= {at, min(1.0, round(at + 0.01, 2))}
    return found


def candidates(trigger: Trigger, conversations: Sequence[ScoredConversation]) -> list[float | int | None]:
    parameter = tunable(trigger)
    if parameter is None:
        return []
    current = current_value(trigger)
    values: set[float | int | None] = {current}
    if parameter == "min_probability":
        values |= _recorded_probabilities(trigger, conversations)
    elif trigger.when.kind in COUNT_CONDITIONS:
        assert isinstance(current, int)
        values |= set(range(COUNT_FLOOR[trigger.when.kind], current + COUNT_RANGE_ABOVE + 1))
    else:
        values |= {round(SCORE_STEP * i, 2) for i in range(1, round(1 / SCORE_STEP) + 1)}
    return sorted(values, key=lambda v: -1.0 if v is None else float(v))


def with_value(policy: Policy, trigger_id: str, value: float | int | None) -> Policy:
    """The policy with one trigger's tunable parameter set to ``value``."""
    triggers = []
    for t in policy.triggers:
        if t.id == trigger_id:
            parameter = tunable(t)
            assert parameter is not None
            t = t.model_copy(update={"when": t.when.model_copy(update={parameter: value})})
        triggers.append(t)
    return policy.model_copy(update={"triggers": triggers})


def counts_of(records: Sequence[ReplayRecord], trigger_id: str) -> TriggerCounts:
    stats = trigger_stats(records).get(trigger_id)
    return TriggerCounts(stats["fired"], stats["necessary"]) if stats else TriggerCounts(0, 0)


def _distance(value: float | int | None, current: float | int | None) -> float:
    # No probability cut-off is a cut-off of 0: the least tightening that does the job is the nearest.
    return abs(float(value or 0.0) - float(current or 0.0))


def _example(conv: ScoredConversation, record: ReplayRecord, trigger: Trigger) -> Example:
    message = conv.messages[record.at_message or 0]
    s = message.signals
    score = ""
    if s is not None:
        when = trigger.when
        if isinstance(when, IntentCondition):
            score = f"{when.intent.value} p={s.probabilities.get(when.intent, float('nan')):.2f}"
        elif isinstance(when, TopicCondition):
            score = f"topic {s.topic.value if s.topic else '-'} p={s.topic_probability or float('nan'):.2f}"
        else:
            score = f"frustration {s.frustration:.2f}"
    return Example(
        conversation_id=conv.conversation_id,
        message_id=message.message_id,
        text=message.text,
        score=score,
        expected=bool(record.label and record.label.escalate),
    )


def _moved(
    conversations: Sequence[ScoredConversation],
    before: Sequence[ReplayRecord],
    after: Sequence[ReplayRecord],
    trigger: Trigger,
) -> tuple[list[Example], list[Example]]:
    gone, new = [], []
    for conv, b, a in zip(conversations, before, after, strict=True):
        if not conv.labelled:
            continue
        was, now = trigger.id in b.trigger_ids, trigger.id in a.trigger_ids
        if was and not now:
            gone.append(_example(conv, b, trigger))
        elif now and not was:
            new.append(_example(conv, a, trigger))
    # Unnecessary ones dropped first (what the change is for), then the necessary ones it costs.
    gone.sort(key=lambda e: (e.expected, e.conversation_id))
    new.sort(key=lambda e: (not e.expected, e.conversation_id))
    return gone[:MAX_EXAMPLES], new[:MAX_EXAMPLES]


def tune_trigger(
    policy: Policy,
    trigger: Trigger,
    conversations: Sequence[ScoredConversation],
    baseline: Sequence[ReplayRecord],
    target_precision: float | None,
) -> Proposal | None:
    """The proposal for one trigger, or None when its current value is already the choice."""
    current = current_value(trigger)
    trials: list[tuple[float | int | None, list[ReplayRecord]]] = []
    for value in candidates(trigger, conversations):
        changed = with_value(policy, trigger.id, value)
        records = list(baseline) if value == current else decide_all(changed, list(conversations))
        trials.append((value, records))

    def meets(records: Sequence[ReplayRecord]) -> bool:
        precision = counts_of(records, trigger.id).precision
        return target_precision is not None and precision is not None and precision >= target_precision - 1e-9

    pool = [t for t in trials if meets(t[1])] if target_precision is not None else trials
    target_met: bool | None = None if target_precision is None else bool(pool)
    pool = pool or trials
    best_value, best_records = min(pool, key=lambda t: (-round(confusion(t[1]).f1, 9), _distance(t[0], current)))
    if best_value == current or best_value is None:
        return None
    before_f1, after_f1 = confusion(baseline).f1, confusion(best_records).f1
    if target_precision is None and after_f1 <= before_f1 + 1e-9:
        return None
    if target_precision is not None and meets(baseline) and after_f1 <= before_f1 + 1e-9:
        return None  # already meets the target; moving would not improve F1
    gone, new = _moved(conversations, baseline, best_records, trigger)
    parameter = tunable(trigger)
    assert parameter is not None
    return Proposal(
        trigger=trigger.id,
        parameter=parameter,
        current=current,
        proposed=best_value,
        target_met=target_met,
        before=counts_of(baseline, trigger.id),
        after=counts_of(best_records, trigger.id),
        overall_before=confusion(baseline),
        overall_after=confusion(best_records),
        no_longer_fired=gone,
        newly_fired=new,
    )


def tune(
    policy: Policy, conversations: Sequence[ScoredConversation], target_precision: float | None = None
) -> tuple[list[Proposal], list[ReplayRecord]]:
    """Per tunable trigger, the proposal (if any); and the baseline decisions of the current policy, over the
    labelled conversations (the others cannot tell a better threshold from a worse one)."""
    conversations = [c for c in conversations if c.labelled]
    baseline = decide_all(policy, conversations)
    proposals = []
    for trigger in policy.triggers:
        if tunable(trigger) is None:
            continue
        proposal = tune_trigger(policy, trigger, conversations, baseline, target_precision)
        if proposal is not None:
            proposals.append(proposal)
    return proposals, baseline


def apply(policy: Policy, proposals: Sequence[Proposal]) -> Policy:
    for p in proposals:
        policy = with_value(policy, p.trigger, p.proposed)
    return policy
