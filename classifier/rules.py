"""The rule scorer as a classifier: Baton's scoring before the trained model, exactly.

For a deployment that wants explainable rules only, and for tests about something else than
understanding (reports, stores), whose scripted conversations must not move when the model is retrained.
Its scores say `source="rules"`, and the conversation composes them the way the rules always did.
"""

from __future__ import annotations

from baton.contract.messages import Intent, Topic
from baton.contract.scoring import MessageScores
from baton.domain.scoring import read

VERSION = "rules-1"


class RuleScorer:
    version = VERSION

    def score(self, text: str) -> MessageScores:
        reading = read(text)
        intents = list(reading.intents)
        if reading.resolved and not intents:
            intents.append(Intent.RESOLVED)
        return MessageScores(
            model_version=VERSION,
            probabilities={i: (1.0 if i in intents else 0.0) for i in Intent},
            intents=intents,
            topic=Topic.OTHER,
            source="rules",
        )

    def score_many(self, texts: list[str]) -> list[MessageScores]:
        return [self.score(t) for t in texts]
