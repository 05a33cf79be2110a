"""`baton audit FILE.jsonl [--chart FILE.png] [--policy-out FILE.yaml]`: the CLI over the audit.

Exit status: 0 done (whether or not anything fell short), 2 bad input (every problem named by line and
field on stderr), an unreadable base policy, an unwritable output or a missing optional extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from baton.apps.argtypes import positive_int
from baton.apps.audit.shortfalls import DEFAULT_LOW_CSAT, DEFAULT_MANY_TURNS

FORMATS = ("table", "json")


def _csat(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= number <= 5:
        raise argparse.ArgumentTypeError(f"CSAT is 1-5, got {value}")
    return number


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser(
        "audit",
        help="find the scenario types where the bot falls short in past conversations, and draft triggers",
        description=(
            "Read past conversations (Baton's export, or a helpdesk export: docs/audit.md), find those where the "
            "bot fell short (marked a missed escalation, an agent took over by hand, the customer gave up, many "
            "back-and-forth turns, low CSAT), group them by the classifier's intent or, without one, by embedding "
            "clusters, and list each scenario type with its count, share, median turns, examples and a suggested "
            "trigger and urgency."
        ),
        epilog="Exit status: 0 done, 2 bad input or an output that cannot be written.",
    )
    audit.add_argument("file", type=Path, metavar="FILE.jsonl", help="one conversation per line")
    audit.add_argument("--chart", type=Path, default=None, metavar="FILE.png", help="also draw the scenario types")
    audit.add_argument(
        "--policy-out", type=Path, default=None, metavar="FILE.yaml", help="write the draft trigger matrix here"
    )
    audit.add_argument(
        "--policy", default="default", metavar="FILE", help="base policy of the draft (default: the bundled default)"
    )
    audit.add_argument("--format", choices=FORMATS, default="table")
    audit.add_argument(
        "--many-turns",
        type=positive_int,
        default=DEFAULT_MANY_TURNS,
        metavar="N",
        help=f"customer messages that make a conversation long (default {DEFAULT_MANY_TURNS})",
    )
    audit.add_argument(
        "--low-csat",
        type=_csat,
        default=DEFAULT_LOW_CSAT,
        metavar="CSAT",
        help=f"a rating at or below this is low, on 1-5 (default {DEFAULT_LOW_CSAT:g})",
    )
    audit.add_argument(
        "--min-count",
        type=positive_int,
        default=None,
        metavar="N",
        help="conversations a scenario type needs to be listed (default: 5, or 1%% of the conversations if more)",
    )
    audit.add_argument("--seed", type=int, default=0, help="k-means seed (default 0): the same seed, the same clusters")
    audit.set_defaults(func=run_audit_command)


def run_audit_command(args: argparse.Namespace) -> int:
    from baton.apps.audit.draft import draft_policy
    from baton.apps.audit.loading import AuditInputError, read_file
    from baton.apps.audit.render import render_json, render_table
    from baton.apps.audit.scenarios import find_scenarios
    from baton.apps.audit.shortfalls import Thresholds
    from baton.apps.output import unwritable, write_failed
    from baton.apps.progress import progress
    from baton.classifier.scorer import scorer_for
    from baton.policies import PolicyError, load_policy
    from baton.settings import get_settings

    for target in (args.chart, args.policy_out):
        problem = unwritable(target) if target is not None else None
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    try:
        base = load_policy(args.policy)
    except PolicyError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        conversations = read_file(args.file)
    except AuditInputError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    draw = None
    if args.chart is not None:
        try:
            from baton.apps.audit.chart import draw_chart as draw
        except ImportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    scorer = scorer_for(get_settings())
    # A deployment's model selector: audit with the version new conversations get (it batches and embeds).
    current = getattr(scorer, "current", None)
    messages = sum(len(c.customer_texts) for c in conversations)
    with progress(messages, "audit", unit="msg") as bar:
        audit = find_scenarios(
            conversations,
            current() if callable(current) else scorer,
            base,
            thresholds=Thresholds(many_turns=args.many_turns, low_csat=args.low_csat),
            min_count=args.min_count,
            seed=args.seed,
            scored=bar.update,
        )
    print(render_json(audit) if args.format == "json" else render_table(audit))
    if args.policy_out is not None:
        text = draft_policy(audit, str(args.file), args.policy)
        try:
            args.policy_out.write_text(text, encoding="utf-8")
        except OSError as err:
            print(f"error: {write_failed(args.policy_out, err)}", file=sys.stderr)
            return 2
        print(f"draft policy written to {args.policy_out}", file=sys.stderr)
    if draw is not None:
        try:
            draw(audit, args.chart)
        except OSError as err:
            print(f"error: {write_failed(args.chart, err)}", file=sys.stderr)
            return 2
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
