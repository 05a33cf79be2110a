"""`baton report`: the arguments and the command (the parser itself is built in baton.apps.cli)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from baton.apps.report.build import ReportOptions, load_report
from baton.apps.report.drift import read_export
from baton.apps.report.loading import ReportError
from baton.apps.report.months import Month
from baton.apps.report.render import render_report


def parse_segments(text: str) -> tuple[str, ...]:
    segments = tuple(s.strip() for s in text.split(",") if s.strip())
    if not segments:
        raise argparse.ArgumentTypeError("give at least one segment")
    return segments


def month_argument(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_report_command(args: argparse.Namespace, database_url: str) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    month = args.month or Month.last_complete()
    options = ReportOptions(
        by=args.by,
        high_value_segments=args.high_value,
        movement_threshold=args.threshold,
        min_judged=args.min_judged,
    )
    try:
        traffic = read_export(args.traffic) if getattr(args, "traffic", None) else None
        result = asyncio.run(load_report(database_url, month, options, traffic=traffic))
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as err:
        shown = make_url(database_url).render_as_string(hide_password=True)
        print(f"error: cannot read the store at {shown}: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return 2
    print(render_report(result, args.format))
    if args.chart:
        try:
            from baton.apps.report.chart import render_chart
        except ImportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        try:
            render_chart(result, args.chart)
        except OSError as err:
            print(f"error: cannot write the chart to {args.chart}: {err}", file=sys.stderr)
            return 2
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
