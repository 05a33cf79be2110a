"""`baton policy tune`: the proposals as a diff, with the evidence (the arguments are in ``arguments``).

The policy file is never written: the diff goes to stdout (and, with ``--diff FILE``, alone to a file that
`git apply` takes), the proposed policy to ``--proposed FILE`` if asked. Exit status: 0 (with or without
proposals), 2 for bad input (the labels file, the policy, the target) naming the file, line and field.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from baton.apps.evaluation import Confusion, confusion
from baton.apps.output import unwritable, write_failed
from baton.apps.replay.records import ReplayRecord
from baton.apps.tune.conversations import ScoredConversation, TuneInputError, read_scored
from baton.apps.tune.decide import decide_all
from baton.apps.tune.policy_text import PolicyTextError, proposed_text, unified_diff
from baton.apps.tune.search import Example, Proposal, TriggerCounts, tune
from baton.policies import PolicyError, load_policy_text

# --- evidence ------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _counts(c: TriggerCounts) -> str:
    return f"fired {c.fired}: {c.necessary} needed a human, {c.unnecessary} did not (precision {_pct(c.precision)})"


def _overall(c: Confusion) -> str:
    figures = f"precision {_pct(c.precision)}, recall {_pct(c.recall)}, F1 {c.f1:.2f}"
    return f"TP {c.tp} FP {c.fp} FN {c.fn} TN {c.tn}, {figures}"


def _example(e: Example) -> str:
    said = "needed a human" if e.expected else "labelled no escalation"
    text = e.text if len(e.text) <= 80 else e.text[:77] + "..."
    where = f"{e.conversation_id}" + (f" {e.message_id}" if e.message_id else "")
    return f'{where} ({said}): "{text}" [{e.score}]'


def _value(value: float | int | None) -> str:
    return "(none)" if value is None else (str(value) if isinstance(value, int) else f"{value:g}")


def evidence_lines(
    proposals: Sequence[Proposal],
    baseline: Sequence[ReplayRecord],
    tuned: Sequence[ReplayRecord],
    conversations: int,
    labelled: int,
    target: float | None,
) -> list[str]:
    lines = [
        f"Evidence: {labelled} labelled of {conversations} conversations, decided again by the policy engine on "
        "their recorded scores; one trigger varied at a time"
        + (f"; target precision {_pct(target)} per trigger" if target is not None else "; maximising F1"),
    ]
    if not proposals:
        lines.append("  no change proposed: every trigger's current threshold is already the best the labels support")
    for p in proposals:
        lines.append("")
        goal = ""
        if p.target_met is not None:
            goal = " (meets the target)" if p.target_met else " (the target cannot be met; best F1 instead)"
        lines.append(f"  {p.trigger}: {p.parameter} {_value(p.current)} -> {_value(p.proposed)}{goal}")
        lines.append(f"    trigger before: {_counts(p.before)}")
        lines.append(f"    trigger after:  {_counts(p.after)}")
        lines.append(f"    overall before: {_overall(p.overall_before)}")
        lines.append(f"    overall after:  {_overall(p.overall_after)}")
        for e in p.no_longer_fired:
            lines.append(f"    no longer fires: {_example(e)}")
        for e in p.newly_fired:
            lines.append(f"    now fires: {_example(e)}")
    if proposals:
        lines.append("")
        lines.append(f"  all proposals together: {_overall(confusion(baseline))}")
        lines.append(f"                      ->  {_overall(confusion(tuned))}")
    lines.append("")
    lines.append(
        "The policy file was not changed. Check the proposal (`baton policy check`) and replay it through the "
        "workflow (`baton replay FILE --compare OLD NEW`) before it goes live."
    )
    return lines


# --- the command --------------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise TuneInputError(f"{path}: cannot read: {err.strerror or err}") from None


def run_tune_command(args: argparse.Namespace) -> int:
    try:
        text = _read(args.policy)
        policy = load_policy_text(text, args.policy)
        conversations: list[ScoredConversation] = read_scored(_read(args.labels).splitlines(), args.labels)
    except PolicyError as err:
        print("\n".join(err.problems) if getattr(err, "problems", None) else str(err), file=sys.stderr)
        return 2
    except TuneInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for target in (args.diff, args.proposed):
        if target is not None and Path(target).resolve() == Path(args.policy).resolve():
            print(f"error: {target}: tune never writes the policy file it reads; name another file", file=sys.stderr)
            return 2
        problem = unwritable(Path(target)) if target is not None else None
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2

    proposals, baseline = tune(policy, conversations, args.target_precision)
    try:
        after_text = proposed_text(text, proposals)
        # The proposal must load as a policy before anyone is shown it.
        proposed = load_policy_text(after_text, f"{args.policy} (proposed)")
    except (PolicyTextError, PolicyError) as err:
        print(f"error: the proposal cannot be written into {args.policy}: {err}", file=sys.stderr)
        return 2
    labelled = [c for c in conversations if c.labelled]
    tuned = decide_all(proposed, labelled)  # the edited text itself, as it would be checked in
    diff = unified_diff(text, after_text, args.policy)
    for target, content in ((args.diff, diff), (args.proposed, after_text)):
        if target is None:
            continue
        try:
            Path(target).write_text(content, encoding="utf-8")
        except OSError as err:
            print(f"error: {write_failed(Path(target), err)}", file=sys.stderr)
            return 2
    if args.format == "json":
        document = {
            "policy": args.policy,
            "conversations": len(conversations),
            "labelled": len(labelled),
            "target_precision": args.target_precision,
            "proposals": [p.as_json() for p in proposals],
            "before": confusion(baseline).as_dict(),
            "after": confusion(tuned).as_dict(),
            "diff": diff,
        }
        print(json.dumps(document, indent=2))
        return 0
    if diff:
        print(diff, end="")
        print()
    evidence = evidence_lines(proposals, baseline, tuned, len(conversations), len(labelled), args.target_precision)
    print("\n".join(evidence))
    return 0
