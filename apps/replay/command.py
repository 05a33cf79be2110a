"""`baton replay FILE`: the command. Reads and checks everything first (the transcripts, the policies, the
output paths), then replays, prints one JSON line per conversation (or per changed conversation with
`--compare A B`) and the summary on stderr.

Labelled transcripts (`label.escalate`, optionally `urgency` and `triggers`) turn a replay into an evaluation:
the summary gives precision, recall and F1, per-trigger precision, urgency accuracy and time to escalation
(apps/evaluation.py). `--compare A B` replays the same transcripts under two policies and lists the
conversations whose outcome changed; it fails (exit 1) when B's F1 is more than `--max-f1-drop` (default 0.02)
below A's, so that a policy change can be gated in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from baton.apps import evaluation
from baton.apps.output import unwritable, write_failed
from baton.apps.replay.records import ReplayRecord
from baton.apps.replay.replayers import Replayer, choose_replayer
from baton.apps.replay.summary import summarize, summarize_comparison
from baton.apps.replay.transcripts import ReplayConversation, ReplayInputError, read_transcripts
from baton.classifier.scorer import Scorer
from baton.policies import PolicyError, load_policy


def _load_policies(paths: list[str]) -> list[str] | None:
    """Each policy's display name, or None after printing why one cannot be used."""
    names = []
    for path in paths:
        try:
            policy = load_policy(path)
        except PolicyError as err:
            print(err, file=sys.stderr)
            return None
        names.append(f"{path} (policy '{policy.name}')")
    return names


def _write_summary(target: str, figures: Mapping[str, Any]) -> int:
    try:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        print(write_failed(target, err), file=sys.stderr)
        return 2
    return 0


def _replayer(args: argparse.Namespace, policy_files: list[str | None], total: int) -> Replayer | None:
    """The engine the output needs (see baton.apps.replay.replayers), or None after printing why not."""
    try:
        return choose_replayer(
            getattr(args, "engine", None),
            handoff=bool(getattr(args, "handoff", False)),
            policy_files=policy_files,
            workers=getattr(args, "workers", None),
            total=total,
        )
    except ValueError as err:
        print(f"replay: {err}", file=sys.stderr)
        return None


def run_replay_command(args: argparse.Namespace) -> int:
    compare: list[str] | None = getattr(args, "compare", None)
    compare_model: list[str] | None = getattr(args, "compare_model", None)
    max_f1_drop: float | None = getattr(args, "max_f1_drop", None)
    summary_json: str | None = getattr(args, "summary_json", None)
    if compare and args.policy:
        print("replay: --compare and --policy cannot be used together", file=sys.stderr)
        return 2
    if compare and compare_model:
        print(
            "replay: --compare and --compare-model cannot be used together (compare one thing at a time)",
            file=sys.stderr,
        )
        return 2
    if max_f1_drop is not None and not (compare or compare_model):
        print("replay: --max-f1-drop applies only with --compare or --compare-model", file=sys.stderr)
        return 2
    models = _load_models(compare_model, getattr(args, "models_dir", None)) if compare_model else None
    if compare_model and models is None:
        return 2
    path = Path(args.file)
    try:
        with path.open(encoding="utf-8") as f:
            conversations = read_transcripts(f, str(path))
    except OSError as err:
        print(f"{path}: cannot read: {err.strerror or err}", file=sys.stderr)
        return 2
    except ReplayInputError as err:
        print(err, file=sys.stderr)
        return 2
    names = _load_policies(list(compare) if compare else [args.policy] if args.policy else [])
    if names is None:
        return 2
    for target in (args.output, summary_json):
        problem = unwritable(target) if target else None
        if problem:
            print(problem, file=sys.stderr)
            return 2
    runs = 2 if compare or compare_model else 1
    replayer = _replayer(args, list(compare) if compare else [args.policy], len(conversations) * runs)
    if replayer is None:
        return 2
    began = time.monotonic()
    with ExitStack() as stack:
        out = stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else sys.stdout
        stack.enter_context(replayer)
        if compare:
            return _compare(replayer, conversations, compare, names, out, began, max_f1_drop, summary_json, str(path))
        if models is not None:
            return _compare_models(
                replayer, conversations, args.policy, models, out, began, max_f1_drop, summary_json, str(path)
            )
        records = replayer.one(conversations, args.policy, out)
    print(summarize(records, time.monotonic() - began, replayer.name), file=sys.stderr)
    if summary_json:
        return _write_summary(
            summary_json, {"file": str(path), "policy": args.policy or "default", **evaluation.metrics(records)}
        )
    return 0


def _compare(
    replayer: Replayer,
    conversations: list[ReplayConversation],
    policies: list[str],
    names: list[str],
    out: TextIO,
    began: float,
    max_f1_drop: float | None,
    summary_json: str | None,
    source: str,
) -> int:
    """`--compare A B`: changed conversations on `out`, the comparison on stderr; 1 when F1 fell too far."""
    before, after = replayer.both(conversations, policies[0], policies[1])
    compared = {"file": source, "policy_a": policies[0], "policy_b": policies[1]}
    names_ab = (names[0], names[1])
    return _report_comparison(
        before, after, names_ab, "2 policies", replayer.name, out, began, max_f1_drop, summary_json, compared
    )


def _report_comparison(
    before: list[ReplayRecord],
    after: list[ReplayRecord],
    names: tuple[str, str],
    under: str,
    engine: str,
    out: TextIO,
    began: float,
    max_f1_drop: float | None,
    summary_json: str | None,
    compared: dict[str, Any],
) -> int:
    """What `--compare` and `--compare-model` print and write: the changed conversations on `out`, the comparison
    on stderr, the figures (after `compared`, what was compared) in `summary_json`; 1 when F1 fell too far."""
    allowed = evaluation.DEFAULT_MAX_F1_DROP if max_f1_drop is None else max_f1_drop
    comparison = evaluation.compare_records(before, after)
    for entry in comparison["changed"]:
        out.write(json.dumps(entry) + "\n")
    out.flush()
    print(
        summarize_comparison(comparison, names, time.monotonic() - began, allowed, under, engine=engine),
        file=sys.stderr,
    )
    failed = bool(comparison["before"]["labelled"]) and evaluation.exceeds_f1_drop(comparison, allowed)
    if summary_json:
        figures = {
            **compared,
            "changed": len(comparison["changed"]),
            "f1_drop": evaluation.f1_drop(comparison),
            "max_f1_drop": allowed,
            "passed": not failed,
            "a": comparison["before"],
            "b": comparison["after"],
            "delta": comparison["delta"],
        }
        if _write_summary(summary_json, figures):
            return 2
    return 1 if failed else 0


def _load_models(specs: list[str], models_dir: Path | None) -> list[Scorer] | None:
    """The two models of --compare-model: a version (the shipped one or one in the models folder) or a model
    folder's path; None after printing why one cannot be used."""
    from baton.classifier.model import Classifier, ModelError
    from baton.classifier.registry import RegistryError, load_version
    from baton.settings import get_settings

    folder = models_dir or get_settings().models_dir
    models: list[Scorer] = []
    for spec in specs:
        try:
            path = Path(spec)
            model = Classifier.load(path) if (path / "model.json").is_file() else load_version(folder, spec)
        except (RegistryError, ModelError) as err:
            print(f"replay: --compare-model: {err}", file=sys.stderr)
            return None
        models.append(model)
    return models


def _compare_models(
    replayer: Replayer,
    conversations: list[ReplayConversation],
    policy: str | None,
    models: list[Scorer],
    out: TextIO,
    began: float,
    max_f1_drop: float | None,
    summary_json: str | None,
    source: str,
) -> int:
    """`--compare-model OLD NEW`: as `--compare`, with one policy and two classifiers; every message is scored
    by each model afresh (recorded scores are not used). Exit 1 when NEW's F1 fell too far below OLD's."""
    before, after = replayer.models(conversations, policy, models[0], models[1])
    names = (f"model {models[0].version}", f"model {models[1].version}")
    under = f"2 models (policy {policy or 'default'})"
    compared = {
        "file": source,
        "policy": policy or "default",
        "model_a": models[0].version,
        "model_b": models[1].version,
    }
    return _report_comparison(
        before, after, names, under, replayer.name, out, began, max_f1_drop, summary_json, compared
    )
