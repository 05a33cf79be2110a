"""`baton policy tune`'s arguments; light to import, so that building the CLI's parser stays fast."""

from __future__ import annotations

import argparse


def target_precision(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a precision between 0 and 1, not {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a precision above 0 and at most 1, not {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from baton.apps.tune.command import run_tune_command

    return run_tune_command(args)


def add_parser(policy_sub: argparse._SubParsersAction) -> None:
    parser = policy_sub.add_parser(
        "tune",
        help="propose per-trigger thresholds from labelled conversations, as a diff (never edits the policy)",
        description=(
            "Decide the labelled conversations again with the policy engine on their recorded scores, once per "
            "candidate threshold of each trigger, and propose the threshold (or probability cut-off) that meets "
            "--target-precision for that trigger or else maximises F1; printed as a unified diff of the policy "
            "file with the evidence. The policy file is not changed."
        ),
    )
    parser.add_argument("--labels", required=True, metavar="FILE.jsonl", help="a `baton export` (labelled)")
    parser.add_argument("--policy", required=True, metavar="FILE.yaml", help="the policy file to tune")
    parser.add_argument("--target-precision", type=target_precision, default=None, metavar="P")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--diff", default=None, metavar="FILE.diff", help="also write the diff alone to this file")
    parser.add_argument(
        "--proposed", default=None, metavar="FILE.yaml", help="also write the proposed policy to this (other) file"
    )
    parser.set_defaults(func=_run)
