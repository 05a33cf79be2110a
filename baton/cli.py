"""The `baton` command."""

from __future__ import annotations

import argparse
import os
import sys

TEMPORAL_COMMANDS = ("replay", "worker", "gateway", "dev")


def _policy_check(args: argparse.Namespace) -> int:
    from policies import PolicyError, load_policy

    status = 0
    for path in args.files:
        try:
            policy = load_policy(path)
        except PolicyError as err:
            for problem in err.problems:
                print(problem, file=sys.stderr)
            status = 1
        else:
            print(
                f"{path}: ok (policy '{policy.name}', {len(policy.triggers)} triggers, {len(policy.segments)} segments)"
            )
    return status


def _policy_show(args: argparse.Namespace) -> int:
    from policies import PolicyError, load_policy
    from policies.matrix import render_matrix

    try:
        policy = load_policy(args.file)
    except PolicyError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 1
    print(render_matrix(policy, fmt=args.format))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from baton.replay import run_replay_command

    return run_replay_command(args)


def _f1_drop(value: str) -> float:
    try:
        drop = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= drop <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return drop


def _worker(args: argparse.Namespace) -> int:
    from worker.main import main

    main()
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from baton.gateway import main

    main()
    return 0


def _dev(args: argparse.Namespace) -> int:
    from worker.dev import main

    return main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baton", description="Durable AI-to-human escalation for customer support.")
    sub = parser.add_subparsers(dest="command", required=True)

    policy = sub.add_parser("policy", help="validate and read policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="validate policy files; errors name file, line and field")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=_policy_check)
    show = policy_sub.add_parser("show", help="print the trigger matrix as a table")
    show.add_argument("file")
    show.add_argument("--format", choices=["table", "markdown"], default="table")
    show.set_defaults(func=_policy_show)

    from baton.evaluation import DEFAULT_MAX_F1_DROP

    replay = sub.add_parser(
        "replay",
        help="run recorded transcripts through the real workflow",
        description=(
            "Run recorded transcripts through the real workflow on the time-skipping test server and print one "
            "JSON decision record per conversation; the summary on stderr measures the decisions against the "
            "transcripts' labels (label.escalate, label.urgency, label.triggers)."
        ),
        epilog=(
            "With --compare A B the same transcripts run under both policies; stdout gets one JSON line per "
            "conversation whose outcome changed, stderr the metrics side by side. Exit status: 0 ok, 1 when B's "
            "F1 is more than --max-f1-drop below A's, 2 for bad input."
        ),
    )
    replay.add_argument("file", help="JSONL, one conversation per line")
    which = replay.add_mutually_exclusive_group()
    which.add_argument("--policy", default=None, help="policy file (default: the bundled default policy)")
    which.add_argument(
        "--compare",
        nargs=2,
        metavar=("POLICY_A", "POLICY_B"),
        default=None,
        help="replay under both policies and list the conversations whose outcome changed from A to B",
    )
    replay.add_argument(
        "--max-f1-drop",
        type=_f1_drop,
        default=None,
        metavar="DROP",
        help=f"with --compare: the largest fall in F1 from A to B that still exits 0 (default {DEFAULT_MAX_F1_DROP:g})",
    )
    replay.add_argument(
        "--output", default=None, help="write the JSON lines (records, or with --compare the changes) here, not stdout"
    )
    replay.add_argument(
        "--summary-json",
        default=None,
        metavar="FILE",
        help="also write the metrics (precision, recall, F1, per trigger, urgency, time to escalation) as JSON",
    )
    replay.set_defaults(func=_replay)

    sub.add_parser("worker", help="run the conversation worker").set_defaults(func=_worker)
    sub.add_parser("gateway", help="run the HTTP gateway for chat backends").set_defaults(func=_gateway)
    sub.add_parser("dev", help="run the embedded stack: Temporal dev server, worker, gateway").set_defaults(func=_dev)
    return parser


def main(argv: list[str] | None = None) -> None:
    from baton.logging import configure_logging, configure_temporal_runtime
    from baton.settings import get_settings

    args = build_parser().parse_args(argv)
    settings = get_settings()
    # Logs go to stderr; stdout carries command output (replay records, tables).
    quiet = args.command in ("replay", "policy")
    configure_logging(settings.log_format, "WARNING" if quiet else settings.log_level)
    if args.command in TEMPORAL_COMMANDS:
        configure_temporal_runtime()
    code = args.func(args)
    if args.command in TEMPORAL_COMMANDS:
        # The Temporal client's native threads can outlive the event loop and abort
        # interpreter finalization (temporalio/sdk-python#300); all work is done and
        # flushed by now, so skip finalization rather than risk a spurious SIGABRT.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
