"""QueueWorkflow: one team's queue of conversations waiting for a human.

An entity workflow per queue (id `queue-<name>`) rather than a table: the
queue is small (people waiting right now), changes by signals that Temporal
already delivers durably and in order, and answers positions by query with no
second store to keep consistent. One queue takes tens of signals a second,
far above any support team's escalation rate; teams scale by having a queue
each. See docs/queues.md.
"""

from __future__ import annotations

from collections import deque

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from baton.contract import ids
    from baton.contract.messages import QueueEntry, QueueRemoval, QueueSnapshot, QueueState, QueueStatus

URGENCY_RANK = {"immediate": 0, "queued": 1}
PICKUPS_REMEMBERED = 20


def ordered(entries: list[QueueEntry]) -> list[QueueEntry]:
    """Serving order: raised first, then urgency, then segment, then who waited longest."""
    return sorted(entries, key=lambda e: (-e.boost, URGENCY_RANK[e.urgency], e.segment_rank, e.enqueued_at))


def status_in(snapshot: QueueSnapshot, conversation_id: str, default_handle_seconds: float = 360.0) -> QueueStatus:
    """One conversation's position and expected wait, from a snapshot in serving order."""
    order = snapshot.entries
    position = next((i + 1 for i, e in enumerate(order) if e.conversation_id == conversation_id), None)
    default = order[position - 1].default_handle_seconds if position is not None else default_handle_seconds
    ahead = position if position is not None else len(order) + 1
    return QueueStatus(
        queue=snapshot.queue,
        position=position,
        depth=len(order),
        estimated_wait_seconds=ahead * (snapshot.seconds_per_pickup or default),
    )


@workflow.defn(name=ids.QUEUE_WORKFLOW)
class QueueWorkflow:
    @workflow.init
    def __init__(self, state: QueueState) -> None:
        self._state = state
        self._pickups = deque(state.pickups, maxlen=PICKUPS_REMEMBERED)

    @workflow.run
    async def run(self, state: QueueState) -> None:
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state.pickups = list(self._pickups)
        workflow.continue_as_new(self._state)

    @workflow.signal(name="enqueue", description="A conversation joins this team's queue (again: it keeps its place).")
    def enqueue(self, entry: QueueEntry) -> None:
        # Idempotent: a retried enqueue replaces the entry, keeping its original place.
        existing = next((e for e in self._state.entries if e.conversation_id == entry.conversation_id), None)
        if existing is not None:
            entry = entry.model_copy(update={"enqueued_at": min(existing.enqueued_at, entry.enqueued_at)})
            self._state.entries.remove(existing)
        self._state.entries.append(entry)
        self._describe()

    @workflow.signal(name="remove", description="A conversation leaves the queue: picked up, moved or closed.")
    def remove(self, removal: QueueRemoval) -> None:
        before = len(self._state.entries)
        self._state.entries = [e for e in self._state.entries if e.conversation_id != removal.conversation_id]
        if removal.reason == "picked_up" and len(self._state.entries) < before:
            self._pickups.append(removal.at)
        self._describe()

    @workflow.signal(name="raise_priority", description="A conversation past its pickup SLA moves up the queue.")
    def raise_priority(self, conversation_id: str) -> None:
        for i, entry in enumerate(self._state.entries):
            if entry.conversation_id == conversation_id:
                self._state.entries[i] = entry.model_copy(update={"boost": entry.boost + 1})
        self._describe()

    @workflow.query(name="status", description="One conversation's position in line and expected wait.")
    def status(self, conversation_id: str) -> QueueStatus:
        return status_in(self.snapshot(), conversation_id)

    @workflow.query(
        name="snapshot", description="The whole queue in serving order and its pace of pickups, read once for many."
    )
    def snapshot(self) -> QueueSnapshot:
        return QueueSnapshot(
            queue=self._state.name, entries=ordered(self._state.entries), seconds_per_pickup=self._seconds_per_pickup()
        )

    @workflow.query(name="entries", description="Everyone waiting in this queue, in the order agents take them.")
    def entries(self) -> list[QueueEntry]:
        return ordered(self._state.entries)

    def _seconds_per_pickup(self) -> float | None:
        """Observed pace of pickups in this queue; None (the policy's handle time) until there is enough history."""
        pickups = list(self._pickups)
        if len(pickups) < 3:
            return None
        span = (pickups[-1] - pickups[0]).total_seconds()
        return max(30.0, span / (len(pickups) - 1)) if span > 0 else None

    def _describe(self) -> None:
        order = ordered(self._state.entries)
        immediate = sum(1 for e in order if e.urgency == "immediate")
        workflow.set_current_details(
            f"**{len(order)} waiting** in queue `{self._state.name}` ({immediate} immediate). "
            f"Next: {order[0].conversation_id if order else 'nobody'}."
        )
