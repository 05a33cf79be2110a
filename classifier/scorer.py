"""Who scores customer messages, as the deployment configures it: the shipped model or the rules."""

from __future__ import annotations

import asyncio
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
    return result if isinstance(result, MessageScores) else await asyncio.to_thread(result)
