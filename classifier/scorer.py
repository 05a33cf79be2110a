"""Who scores customer messages, as the deployment configures it: the shipped model or the rules."""

from __future__ import annotations

from typing import Protocol

from baton.contract.scoring import MessageScores
from baton.settings import Settings


class Scorer(Protocol):
    version: str

    def score(self, text: str) -> MessageScores: ...


def scorer_for(settings: Settings) -> Scorer:
    """The configured scorer, loaded once per process (`BATON_CLASSIFIER`: model or rules)."""
    if settings.classifier == "rules":
        from baton.classifier.rules import RuleScorer

        return RuleScorer()
    from baton.classifier.model import default_classifier

    return default_classifier()
