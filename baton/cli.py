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

    replay = sub.add_parser("replay", help="run recorded transcripts through the real workflow")
    replay.add_argument("file", help="JSONL, one conversation per line")
    replay.add_argument("--policy", default=None, help="policy file (default: the bundled default policy)")
    replay.add_argument("--output", default=None, help="write decision records here instead of stdout")
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
