"""Scoring a customer message: a local activity, for messages that reach the workflow without scores
(the gateway and Baton's client score them before sending). Either way the scores are recorded in the
conversation's history, so a model upgrade never changes a score already given."""

from __future__ import annotations

from temporalio import activity

from baton.classifier import default_classifier
from baton.classifier.scorer import Scorer, pinned_scorer, score_off_loop
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
        # Inline when the first stage suffices (cheaper than a hop), in the encoder process (or a thread) when
        # the encoder stage reads the message. A running conversation keeps the version it pinned at its first
        # score (when this deployment still has it); a new one gets the current.
        return await score_off_loop(pinned_scorer(self._classifier, request.model_version), request.text)
