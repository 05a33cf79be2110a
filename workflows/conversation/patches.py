"""The conversation workflow's recorded changes, and the one marker that stands for all of them in new runs.

Each change to ConversationWorkflow that alters its commands was made behind `workflow.patched(id)`, so that
a history recorded before it replays the old way. Asked one by one, a new run records every one of them: a
marker and an upsert of `TemporalChangeVersion` each, ten of each by the time a conversation has escalated,
five at its first message. A run that records BASELINE took every change listed here, so it asks none of them
again: one marker and one upsert in all. A run recorded before BASELINE answers each change as it recorded it,
so yesterday's histories replay unchanged.

A change made after BASELINE is asked with `workflow.patched` itself (a future baseline may fold it in).
"""

from __future__ import annotations

from temporalio import workflow

# Recorded by every run that starts from this version of the workflow on.
BASELINE = "conversation-changes-through-2026-11"

# Before it surge mode kept an incident question with the bot even when it also asked for a person.
PERSON_BEATS_SURGE = "person-request-beats-surge"
# The main loop closes a conversation nobody wrote in for the policy's idle time.
IDLE_CLOSE = "idle-close"
# Before it the conversation's row was written only when it closed; after it, at its first message.
START_RECORDED = "start-recorded-at-first-message"
# A run continuing as new carries a bounded transcript.
CARRY_BOUNDED = "carry-bounded-transcript"
# The idle timer runs on across messages, and a run continues as new from a fixed number of events.
STEADY_RUN = "idle-timer-kept-runs-under-4096-events"
# Before it messages were scored inline with the rules; after it by the classifier, the scores recorded in history.
CLASSIFIER = "classifier-scores-recorded"
# Before it a message the gateway scored with another version than the conversation's was taken as is.
PINNED_MODEL = "pinned-model-rescore"
# Before it the surge state was asked with five attempts of up to 5 s each (a decision could wait 25 s on it);
# after it, one attempt bounded by handoff.SURGE_READ_DEADLINE, answered by the worker's cached read.
SURGE_READ = "surge-read-bounded"
# Runs recorded before these never set BatonWaitingSince and BatonModelVersion.
WAITING_SINCE = "waiting-since-search-attribute"
MODEL_VERSION = "model-version-search-attribute"

THROUGH_BASELINE = frozenset(
    {
        PERSON_BEATS_SURGE,
        IDLE_CLOSE,
        START_RECORDED,
        CARRY_BOUNDED,
        STEADY_RUN,
        CLASSIFIER,
        PINNED_MODEL,
        SURGE_READ,
        WAITING_SINCE,
        MODEL_VERSION,
    }
)


def patched(change: str) -> bool:
    """Whether this run takes `change`: yes in a run that recorded BASELINE, else as `workflow.patched` says.

    BASELINE is asked first, every time (the SDK remembers its answer per run): in a new run it is recorded
    at the first change asked and answers all the rest; replaying a run recorded before it, it answers no,
    and the change's own marker decides, as it did when the run was recorded.
    """
    if change not in THROUGH_BASELINE:
        raise ValueError(f"change {change!r}: not one of the changes BASELINE stands for; ask workflow.patched")
    return workflow.patched(BASELINE) or workflow.patched(change)
