"""Scoring a customer message: a local activity, for messages that reach the workflow without scores
(the gateway and Baton's client score them before sending). Either way the scores are recorded in the
conversation's history, so a model upgrade never changes a score already given."""

from __future__ import annotations

from temporalio import activity

from baton.classifier import default_classifier
from baton.classifier.scorer import Scorer
from baton.contract.activities import Scoring
from baton.contract.scoring import MessageScores, ScoreRequest


class ScoringActivities(Scoring):
    def __init__(self, classifier: Scorer | None = None) -> None:
        # Loaded when the worker is built, so a missing or damaged model stops the worker at start.
        self._classifier = classifier or default_classifier()

    @property
    def version(self) -> str:
        return self._classifier.version

    @activity.defn(name="score_message")
    async def score_message(self, request: ScoreRequest) -> MessageScores:
        # About a millisecond of CPU: cheaper inline than handed to a thread.
        return self._classifier.score(request.text)
