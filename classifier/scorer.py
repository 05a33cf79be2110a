"""Who scores customer messages, as the deployment configures it: the shipped model or the rules."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import cache
from typing import Protocol

from baton.contract.scoring import MessageScores
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger(__name__)


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
    use_encoder_process(settings.encoder_process)
    warm_encoder_process(selector)
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
    under a millisecond); else the encoder stage's part in the encoder process (`use_encoder_process`), or in a
    thread when there is none or it fails, so a message the encoder reads (5-10 ms of numpy) never stalls the
    event loop. Scorers without stages (`staged`, as baton.classifier.model.Classifier has) score inline."""
    staged = getattr(scorer, "staged", None)
    if staged is None:
        return scorer.score(text)
    result = staged(text)
    if isinstance(result, MessageScores):
        return result
    loop = asyncio.get_running_loop()
    job = getattr(result, "job", None)
    pool = _encoder_process() if job is not None else None
    if pool is not None:
        from baton.classifier.model import second_stage_scores

        try:
            second = await loop.run_in_executor(pool, second_stage_scores, *job)
        except Exception as err:  # the process died, could not load the folder, or is shutting down
            log.warning("encoder_process_failed", error=f"{type(err).__name__}: {err}", fallback="thread")
            with _pool_lock:
                _discard(pool, wait=False)
        else:
            return result.finish(second)
    return await loop.run_in_executor(_encoder_threads(), result)


# Where the encoder stage runs. In a child process by default: its numpy code between products holds the GIL,
# and in the worker's or gateway's own process that stalls the event loop for every other message (at 50
# conversations on two cores, message-to-decision p50 a median 1.73 x the echo floor in threads, 1.51 in a
# process; bench/README.md). The child costs about 150 MB and a second or two to start, once per process.
_use_process = True
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def use_encoder_process(on: bool) -> None:
    """Run the encoder stage in a child process (on) or in this process's threads (off); see Settings."""
    global _use_process
    _use_process = on
    if not on:
        with _pool_lock:
            if _pool is not None:
                _discard(_pool, wait=False)


def _encoder_process() -> ProcessPoolExecutor | None:
    global _pool
    if not _use_process:
        return None
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the process has the Temporal SDK's threads, which a forked child must not inherit.
            _pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_child, initargs=(os.getpid(),)
            )
        return _pool


def shutdown_encoder_process() -> None:
    """Stop the encoder process now: for a program about to leave by os._exit, which skips the pool's own exit."""
    with _pool_lock:
        if _pool is not None:
            _discard(_pool, wait=True)


def _start_child(parent: int) -> None:
    """In the encoder process: a lower priority, and an exit as soon as the process that started it is gone (one
    that left by os._exit or was killed never says so, and the child would wait for work forever, holding
    whatever it inherited, such as the pipes a caller reads the parent's output from)."""
    _lower_priority()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, name="baton-encoder-parent", daemon=True).start()


def _discard(pool: ProcessPoolExecutor, wait: bool) -> None:
    """Forget a pool (the next message starts a new one) and shut it down: waiting for its process to leave, or
    letting it leave on its own. Called with `_pool_lock` held."""
    global _pool
    if _pool is pool:
        _pool = None
    pool.shutdown(wait=wait, cancel_futures=True)


def warm_encoder_process(scorer: Scorer) -> None:
    """Start the encoder process and load the scorer's encoder stage in it now, not at the first message that
    needs it. Returns at once; nothing when the scorer has no encoder stage or the process is off."""
    current = getattr(scorer, "current", None)
    second_stage_job = getattr(current() if current is not None else scorer, "second_stage_job", None)
    job = second_stage_job("warm up") if second_stage_job is not None else None
    pool = _encoder_process() if job is not None else None
    if pool is not None:
        from baton.classifier.model import second_stage_scores

        pool.submit(second_stage_scores, *job)


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
