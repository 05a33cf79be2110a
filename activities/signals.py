"""The scoring activity: runs as a local activity beside the workflow."""

from __future__ import annotations

from temporalio import activity

from activities.scoring import score
from baton.messages import ScoreInput, Signals


@activity.defn(name="score_message")
async def score_message(request: ScoreInput) -> Signals:
    return score(request.text, request.previous_customer_texts, request.previous_frustration)
