"""The `baton` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from baton.apps.argtypes import positive_int

TEMPORAL_COMMANDS = ("replay", "export", "worker", "gateway", "dev", "incident")


def _policy_check(args: argparse.Namespace) -> int:
    from baton.policies import PolicyError, load_policy

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
    from baton.policies import PolicyError, load_policy
    from baton.policies.matrix import render_matrix

    try:
        policy = load_policy(args.file)
    except PolicyError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 1
    print(render_matrix(policy, fmt=args.format))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from baton.apps.replay.command import run_replay_command

    return run_replay_command(args)


def _export(args: argparse.Namespace) -> int:
    from baton.apps.export import run_export_command

    return run_export_command(args)


def _f1_drop(value: str) -> float:
    try:
        drop = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= drop <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return drop


def _incident(args: argparse.Namespace) -> int:
    import asyncio

    from temporalio.client import WorkflowUpdateFailedError

    from baton.apps import client as baton_client
    from baton.contract.messages import Incident
    from baton.settings import get_settings
    from baton.worker.connection import connect

    settings = get_settings()

    async def run() -> int:
        client = await connect(settings)
        try:
            if args.incident_command == "declare":
                incident = Incident(description=args.description, declared_by=args.by)
                status = await baton_client.declare_incident(client, settings.task_queue, incident)
            elif args.incident_command == "end":
                status = await baton_client.end_incident(client, settings.task_queue, args.by)
            else:
                status = await baton_client.operations_status(client, settings.task_queue)
        except WorkflowUpdateFailedError as err:
            print(getattr(err.cause, "message", None) or str(err.cause or err), file=sys.stderr)
            return 1
        print(status.model_dump_json(indent=2))
        return 0

    return asyncio.run(run())


def _worker(args: argparse.Namespace) -> int:
    from baton.worker.main import main

    main()
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from baton.apps.gateway import main

    main()
    return 0


def _codec_server(args: argparse.Namespace) -> int:
    from baton.apps.codec_server import main

    return main()


def _codec_new_key(args: argparse.Namespace) -> int:
    from pathlib import Path

    from baton.worker.codec import add_key_to_file, format_key, generate_key

    if args.file is None:
        print(format_key(generate_key(args.id)))  # for BATON_CODEC_KEYS, put first
        return 0
    key = add_key_to_file(Path(args.file), args.id)
    print(f"{args.file}: key {key.key_id!r} added first; it encrypts from the next start, older keys still decrypt")
    return 0


def _dev(args: argparse.Namespace) -> int:
    from baton.apps.dev import main

    return main()


def _database_url(args: argparse.Namespace) -> str:
    from baton.settings import get_settings

    return args.database_url or get_settings().database_url


def _report(args: argparse.Namespace) -> int:
    from baton.apps.report import run_report_command

    return run_report_command(args, _database_url(args))


def _review(args: argparse.Namespace) -> int:
    from baton.apps.review import run_label_command, run_sample_command

    if args.review_command == "sample":
        return run_sample_command(args, _database_url(args))
    return run_label_command(args, _database_url(args))


def _db(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from baton.store.database import head_revision, migrate

    url = _database_url(args)
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        migrate(url)
    except (SQLAlchemyError, OSError) as err:
        print(
            f"error: cannot migrate the store at {shown}: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr
        )
        return 2
    print(f"{shown}: at migration {head_revision()} (newest)")
    return 0


def _add_reporting_commands(sub: argparse._SubParsersAction) -> None:
    from baton.apps.report import (
        DEFAULT_HIGH_VALUE_SEGMENTS,
        FORMATS,
        GROUPINGS,
        MIN_JUDGED,
        MOVEMENT_THRESHOLD,
        month_argument,
        parse_segments,
    )
    from baton.apps.review import DEFAULT_SEED, yes_no

    store_help = "SQLAlchemy async URL of the store (default: BATON_DATABASE_URL)"
    report = sub.add_parser(
        "report",
        help="the month's escalation figures from the store, against the month before",
        description=(
            "Escalation rate, accuracy, time to escalation and pickup, CSAT and abandonment for a month, overall "
            "and per group, compared with the previous month; flags large movements and gives tighten/loosen "
            "recommendations per trigger. Definitions: docs/reporting.md."
        ),
    )
    report.add_argument(
        "--month", type=month_argument, default=None, metavar="YYYY-MM", help="default: the last complete month"
    )
    report.add_argument("--by", choices=GROUPINGS, default="segment", help="grouping of the per-group table")
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--chart", default=None, metavar="FILE.png", help="also draw the month as a PNG chart")
    report.add_argument("--database-url", default=None, metavar="URL", help=store_help)
    report.add_argument(
        "--high-value",
        type=parse_segments,
        default=DEFAULT_HIGH_VALUE_SEGMENTS,
        metavar="SEGMENT[,SEGMENT]",
        help=f"segments compared against the average (default: {','.join(DEFAULT_HIGH_VALUE_SEGMENTS)})",
    )
    report.add_argument(
        "--threshold",
        type=float,
        default=MOVEMENT_THRESHOLD,
        metavar="RATIO",
        help=f"flag a month-over-month relative change above this (default {MOVEMENT_THRESHOLD:g})",
    )
    report.add_argument(
        "--min-judged",
        type=int,
        default=MIN_JUDGED,
        metavar="N",
        help=f"judged escalations a trigger needs for a recommendation (default {MIN_JUDGED})",
    )
    report.add_argument(
        "--traffic",
        default=None,
        metavar="EXPORT.jsonl",
        help="a `baton export` of this month and the one before: also flags a shift in the topic and intent mix",
    )
    report.set_defaults(func=_report)

    review = sub.add_parser("review", help="review escalations: draw a sample, record verdicts")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    draw = review_sub.add_parser(
        "sample",
        help="draw a month's escalations for review, stratified by trigger",
        description=(
            "Draw N escalations of the month, triggers taking turns (rarest first) so that rare triggers are "
            "represented; the same seed gives the same sample."
        ),
    )
    draw.add_argument("--month", type=month_argument, required=True, metavar="YYYY-MM")
    draw.add_argument("--n", type=int, required=True, help="how many escalations to draw")
    draw.add_argument("--seed", type=int, default=DEFAULT_SEED)
    draw.add_argument("--unreviewed", action="store_true", help="skip escalations that already have a review label")
    draw.add_argument("--format", choices=["table", "json"], default="table")
    draw.add_argument("--database-url", default=None, metavar="URL", help=store_help)
    draw.set_defaults(func=_review)
    verdict = review_sub.add_parser(
        "label",
        help="record whether an escalation was necessary, or that one was missed",
        description=(
            "Record a reviewer's verdict; it overrides the agent's disposition in `baton report`. With --missed, "
            "ID is a conversation that should have been handed off, from the customer message --from-message."
        ),
    )
    verdict.add_argument(
        "escalation_id",
        metavar="ID",
        help="<conversation_id>:<message_id>, as `review sample` shows; with --missed, the conversation id",
    )
    kind = verdict.add_mutually_exclusive_group(required=True)
    kind.add_argument("--necessary", type=yes_no, metavar="yes|no")
    kind.add_argument("--missed", action="store_true", help="a missed escalation: it should have been handed off")
    verdict.add_argument(
        "--from-message",
        default=None,
        metavar="MESSAGE_ID",
        help="with --missed: the customer message it should have come at",
    )
    verdict.add_argument("--note", default=None, metavar="TEXT")
    verdict.add_argument("--reviewer", default=None, metavar="NAME", help="default: the login name")
    verdict.add_argument("--database-url", default=None, metavar="URL", help=store_help)
    verdict.set_defaults(func=_review)

    from baton.apps.keys import add_parser as add_keys_parser  # argparse only; the store loads later

    add_keys_parser(sub)

    db = sub.add_parser("db", help="the store's schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="migrate the store to the newest schema (safe to run again)")
    upgrade.add_argument("--database-url", default=None, metavar="URL", help=store_help)
    upgrade.set_defaults(func=_db)


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
    from baton.apps.tune.arguments import add_parser as add_tune_parser  # argparse only; tuning loads later

    add_tune_parser(policy_sub)

    from baton.apps.evaluation import DEFAULT_MAX_F1_DROP

    replay = sub.add_parser(
        "replay",
        help="run recorded transcripts through Baton's decisions",
        description=(
            "Run recorded transcripts through Baton's decisions and print one JSON decision record per "
            "conversation; the summary on stderr measures the decisions against the transcripts' labels "
            "(label.escalate, label.urgency, label.triggers). The engine (the default) runs the workflow's own "
            "decision functions without Temporal, in parallel; --engine workflow runs the real workflow on the "
            "time-skipping test server, for what needs it: the handoff message and note (--handoff) and the LLM "
            "judge (chosen by itself when the policy enables the judge)."
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
        "--compare-model",
        nargs=2,
        metavar=("OLD", "NEW"),
        default=None,
        help="replay under one policy with two classifier versions (or model folders), scoring every message "
        "with each; list the conversations whose outcome changed and gate on F1 as --compare does",
    )
    replay.add_argument(
        "--models-dir", default=None, type=Path, help="with --compare-model: the models folder (default: settings)"
    )
    replay.add_argument(
        "--max-f1-drop",
        type=_f1_drop,
        default=None,
        metavar="DROP",
        help=f"with --compare: the largest fall in F1 from A to B that still exits 0 (default {DEFAULT_MAX_F1_DROP:g})",
    )
    replay.add_argument(
        "--engine",
        choices=["engine", "workflow"],
        default=None,
        help="engine: the decision functions without Temporal, in parallel (default unless the output needs the "
        "workflow); workflow: the real workflow on the time-skipping test server",
    )
    replay.add_argument(
        "--handoff",
        action="store_true",
        help="add each escalation's handoff message and note to the records (runs the workflow)",
    )
    replay.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="engine mode: processes deciding in parallel (default: one per core)",
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

    export = sub.add_parser(
        "export",
        help="turn past conversations from Temporal into labelled replay transcripts",
        description=(
            "Read the conversations started in [--since, --until) from Temporal (visibility, then each one's "
            "`state` query, answered by the running Baton worker) and write them as replay JSONL, one line per "
            "conversation sorted by start time. Only what the customer and the bot said is kept. Labels come "
            "from the newest review label of each escalation (`baton review label`, read from the store) or "
            "else the agent's disposition: escalate=true when any escalation was judged necessary (with its "
            "urgency); false when every escalation was judged unnecessary, or when the conversation never "
            "escalated and was closed without an abandonment reason or ended with the customer saying it was "
            "solved; unlabelled otherwise."
        ),
        epilog=(
            "Dates: YYYY-MM-DD or ISO datetimes, UTC unless a zone is given; --until defaults to now. "
            "Temporal: BATON_TEMPORAL_ADDRESS, BATON_TEMPORAL_NAMESPACE. Exit status: 0 done (skipped "
            "conversations are listed on stderr), 1 none could be read, 2 bad arguments or Temporal unreachable."
        ),
    )
    export.add_argument("output", metavar="OUT.jsonl", help="where to write the transcripts")
    export.add_argument("--since", required=True, metavar="DATE", help="first start time included")
    export.add_argument("--until", default=None, metavar="DATE", help="start times before this (default: now)")
    export.add_argument(
        "--include-open",
        action="store_true",
        help="also export conversations still running (labelled only from dispositions)",
    )
    export.add_argument(
        "--database-url", default=None, help="the store with the review labels (default: BATON_DATABASE_URL)"
    )
    export.set_defaults(func=_export)

    incident = sub.add_parser("incident", help="declare or end an incident (a surge), or show operations status")
    incident_sub = incident.add_subparsers(dest="incident_command", required=True)
    declare = incident_sub.add_parser("declare", help="start a surge now, with a description customers will see")
    declare.add_argument("description")
    declare.add_argument("--by", default="operator", help="who declares it")
    end = incident_sub.add_parser("end", help="end the declared incident")
    end.add_argument("--by", default="operator")
    incident_sub.add_parser("status", help="surge state, waiting conversations, escalation rate")
    incident.set_defaults(func=_incident)

    sub.add_parser("worker", help="run the conversation worker").set_defaults(func=_worker)
    sub.add_parser("gateway", help="run the HTTP gateway for chat backends").set_defaults(func=_gateway)
    sub.add_parser("dev", help="run the embedded stack: Temporal dev server, worker, gateway").set_defaults(func=_dev)
    sub.add_parser(
        "codec-server", help="serve /encode and /decode so the Temporal UI and CLI show encrypted payloads"
    ).set_defaults(func=_codec_server)
    codec = sub.add_parser("codec", help="payload encryption keys (docs/security.md)")
    codec_sub = codec.add_subparsers(dest="codec_command", required=True)
    new_key = codec_sub.add_parser(
        "new-key", help="make a key: print it as id:base64key, or with --file put it first in a key file (rotation)"
    )
    new_key.add_argument("--id", required=True, help="the key id stored with each payload, e.g. 2026-11")
    new_key.add_argument("--file", default=None, metavar="PATH", help="the key file (BATON_CODEC_KEY_FILE)")
    new_key.set_defaults(func=_codec_new_key)
    _add_reporting_commands(sub)
    from baton.apps.model.command import add_parser as add_model_parser  # argparse only; training loads later

    add_model_parser(sub)
    from baton.apps.audit.command import add_parser as add_audit_parser  # argparse only; the audit loads later

    add_audit_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    from baton.logging import configure_logging, configure_temporal_runtime
    from baton.settings import get_settings

    args = build_parser().parse_args(argv)
    settings = get_settings()
    # Logs go to stderr; stdout carries command output (replay records, tables).
    quiet = args.command in ("replay", "export", "policy", "report", "review", "db", "model", "keys", "audit")
    configure_logging(settings.log_format, "WARNING" if quiet else settings.log_level)
    if args.command in TEMPORAL_COMMANDS:
        configure_temporal_runtime()
    try:
        code = args.func(args)
    except ValueError as err:
        from baton.worker.codec import CodecKeyError

        if not isinstance(err, CodecKeyError):
            raise
        print(f"baton {args.command}: {err}", file=sys.stderr)
        code = 2
    if args.command in TEMPORAL_COMMANDS:
        # The Temporal client's native threads can outlive the event loop and abort
        # interpreter finalization (temporalio/sdk-python#300); all work is done and
        # flushed by now, so skip finalization rather than risk a spurious SIGABRT.
        sys.stdout.flush()
        sys.stderr.flush()
        from baton.classifier.scorer import shutdown_encoder_process

        shutdown_encoder_process()  # os._exit skips the encoder process's own shutdown
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
