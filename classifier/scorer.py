"""Who scores customer messages, as the deployment configures it: the shipped model or the rules."""

from __future__ import annotations

from typing import Protocol

from baton.contract.scoring import MessageScores
from baton.settings import Settings


class Scorer(Protocol):
    version: str

    def score(self, text: str) -> MessageScores: ...


class PinnedScorer(Scorer, Protocol):
    """A scorer that can also give the model version a conversation pinned (baton.classifier.registry)."""

    def for_version(self, version: str) -> Scorer | None: ...


def scorer_for(settings: Settings) -> Scorer:
    """The configured scorer, loaded once per process (`BATON_CLASSIFIER`: model or rules). With the model,
    the deployment's promoted version (`BATON_MODELS_DIR`/registry.json), else the shipped one."""
    if settings.classifier == "rules":
        from baton.classifier.rules import RuleScorer

        return RuleScorer()
    from baton.classifier.registry import selector_for

    return selector_for(settings.models_dir)


def pinned_scorer(scorer: Scorer, version: str | None) -> Scorer:
    """The scorer of a conversation's pinned version where the scorer has it, else the scorer itself."""
    if version is None or version == scorer.version:
        return scorer
    for_version = getattr(scorer, "for_version", None)
    pinned = for_version(version) if for_version is not None else None
    return pinned if pinned is not None else scorer
