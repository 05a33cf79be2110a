"""Who scores customer messages, as the deployment configures it: the shipped model or the rules."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Protocol

from baton.contract.scoring import MessageScores
from baton.settings import Settings


class Scorer(Protocol):
    version: str

    def score(self, text: str) -> MessageScores: ...


def scorer_for(settings: Settings) -> Scorer:
    """The configured scorer, loaded once per process (`BATON_CLASSIFIER`: model or rules). With the model,
    the deployment's promoted version (`BATON_MODELS_DIR`/registry.json), else the shipped one."""
    if settings.classifier == "rules":
        from baton.classifier.rules import RuleScorer

        return RuleScorer()
    from baton.classifier.registry import selector_for

    selector = selector_for(settings.models_dir)
    selector.current()  # loaded now, so a missing or damaged model stops a worker or gateway at start
    return selector


def pinned_scorer(scorer: Scorer, version: str | None) -> Scorer:
    """The scorer of a conversation's pinned version where the scorer has it (a `for_version(version)` method, as
    baton.classifier.registry.ModelSelector has), else the scorer itself."""
    if version is None or version == scorer.version:
        return scorer
    for_version = getattr(scorer, "for_version", None)
    pinned = for_version(version) if for_version is not None else None
    return pinned if pinned is not None else scorer


async def score_off_loop(scorer: Scorer, text: str) -> MessageScores:
    """A message's scores from async code: inline when the scorer's first stage suffices (most messages, well
    under a millisecond), else the rest in a thread, so a message the encoder stage reads (milliseconds of
    numpy, which releases the GIL in its products) does not stall the event loop. Scorers without stages
    (`staged`, as baton.classifier.model.Classifier has) score inline."""
    staged = getattr(scorer, "staged", None)
    if staged is None:
        return scorer.score(text)
    result = staged(text)
    if isinstance(result, MessageScores):
        return result
    return await asyncio.get_running_loop().run_in_executor(_encoder_threads(), result)


# The encoder's threads run at a lower scheduling priority (nice +10) than the rest of the process: a message
# the encoder reads takes 5-10 ms of a core, and on a small machine that core is one the event loop and the
# Temporal server beside it need for every other message. They wait for the encoder's message, not the reverse.
ENCODER_NICENESS = 10


@cache
def _encoder_threads() -> ThreadPoolExecutor:
    # At most half the cores: the rest stay with the event loop, the worker and the server.
    workers = max(1, (os.cpu_count() or 2) // 2)
    return ThreadPoolExecutor(workers, thread_name_prefix="baton-encoder", initializer=_lower_priority)


def _lower_priority() -> None:
    # On Linux a thread is a task with its own niceness; elsewhere the threads keep the process's priority.
    # Relative to the thread's present niceness, so a process started nice is never raised.
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        thread = threading.get_native_id()
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + ENCODER_NICENESS))
