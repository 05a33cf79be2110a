"""Search attributes operators filter conversations by. Never text or PII."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PHASE = SearchAttributeKey.for_keyword("BatonPhase")
URGENCY = SearchAttributeKey.for_keyword("BatonUrgency")
TIER = SearchAttributeKey.for_keyword("BatonTier")
SEGMENT = SearchAttributeKey.for_keyword("BatonSegment")
TRIGGERS = SearchAttributeKey.for_keyword_list("BatonTriggers")
AGENT = SearchAttributeKey.for_keyword("BatonAgent")
QUEUE = SearchAttributeKey.for_keyword("BatonQueue")
# When the latest escalation started waiting for a person (kept after pickup: with BatonPhase = "escalated",
# the time the customer has been waiting since).
WAITING_SINCE = SearchAttributeKey.for_datetime("BatonWaitingSince")
# The classifier version the conversation pinned at its first scored message (the model that decided it).
MODEL_VERSION = SearchAttributeKey.for_keyword("BatonModelVersion")

ALL = (PHASE, URGENCY, TIER, SEGMENT, TRIGGERS, AGENT, QUEUE, WAITING_SINCE, MODEL_VERSION)
