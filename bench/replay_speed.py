"""How fast `baton replay` decides: the engine (one process, then one per core) and the workflow mode.

    .venv/bin/python -m bench.replay_speed                       # 2,000 one-message conversations, 300 by workflow
    .venv/bin/python -m bench.replay_speed --conversations 5000 --workflow 0 --json out.json

The corpus is tests/replay_corpus.py: one-message conversations written in many ways (no two the same string,
so nothing is served from a cache) from accounts of every tier and lifecycle, and `--planted` conversations of
the helpdesk set (several turns each, every failure mode). Rates are conversations per second of wall time; the
CPU column is the replaying process's own CPU per conversation (worker processes excluded), which is what one
core can do when the machine is busy with something else. The load average is printed: read rates from a loaded
machine as a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baton.apps.replay.engine import default_workers, replay_engine
from baton.apps.replay.policy import replayed_policy
from baton.apps.replay.runner import replay
from baton.apps.replay.transcripts import ReplayConversation, read_transcripts
from baton.classifier.rules import RuleScorer
from baton.classifier.scorer import Scorer, scorer_for
from baton.logging import configure_logging
from baton.settings import get_settings
from tests.replay_corpus import corpus


def _timed(run: Callable[[], object], count: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "conversations": count,
        "seconds": round(wall, 3),
        "per_second": round(count / wall, 1),
        "cpu_ms_per_conversation": round(1000 * cpu / count, 3),
    }


def measure(conversations: list[ReplayConversation], workflow_count: int, engine: bool = True) -> dict[str, Any]:
    policy = replayed_policy(None)
    model: Scorer = scorer_for(get_settings())
    rules: Scorer = RuleScorer()
    cores = default_workers()
    # Warm both scorers (the model's first call loads its tables) outside the timing.
    replay_engine(conversations[:50], policy, model, workers=1)
    replay_engine(conversations[:50], policy, rules, workers=1)
    figures: dict[str, Any] = {"load_average": os.getloadavg(), "cores": cores, "runs": {}}
    runs = figures["runs"]
    for name, scorer in (("rules", rules), ("model", model)) if engine else ():
        runs[f"engine, {name}, 1 process"] = _timed(
            lambda s=scorer: replay_engine(conversations, policy, s, workers=1), len(conversations)
        )
        runs[f"engine, {name}, {cores} processes"] = _timed(
            lambda s=scorer: replay_engine(conversations, policy, s, workers=cores), len(conversations)
        )
    if workflow_count:
        subset = conversations[:workflow_count]
        runs["workflow, model"] = _timed(lambda: asyncio.run(replay(subset, None, io.StringIO())), len(subset))
    return figures


def _table(figures: dict[str, Any]) -> str:
    rows = [f"load average {figures['load_average'][0]:.2f} on {figures['cores']} cores", ""]
    rows.append(f"{'run':32} {'conversations':>13} {'seconds':>8} {'conv/s':>9} {'CPU ms/conv':>12}")
    for name, run in figures["runs"].items():
        rows.append(
            f"{name:32} {run['conversations']:>13} {run['seconds']:>8.2f} {run['per_second']:>9.1f} "
            f"{run['cpu_ms_per_conversation']:>12.3f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=2000, help="one-message conversations (default 2000)")
    parser.add_argument("--planted", type=int, default=0, help="multi-turn helpdesk conversations to add (max 624)")
    parser.add_argument("--workflow", type=int, default=300, help="of those, replayed by the workflow (0: skip)")
    parser.add_argument("--no-engine", action="store_true", help="time the workflow mode only (e.g. to profile it)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    configure_logging("console", "WARNING")  # as `baton replay` runs: the worker's info lines are not the output
    lines = corpus(limit=args.planted, one_liners=args.conversations)
    conversations = read_transcripts(lines, "corpus")
    figures = measure(conversations, min(args.workflow, len(conversations)), engine=not args.no_engine)
    print(_table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
