"""The activities workflows call, as interfaces: names, one typed input, one typed result.

Workflows call them by reference (``workflow.execute_activity_method(Delivery.deliver_to_customer, ...)``)
so that a rename is a refactor and the result type comes from the annotation, without importing
activity code (which loads httpx, SQLAlchemy and the OpenAI client). ``baton.activities`` implements
each class; a method's name is its activity name, so an implementation that overrides it with
``@activity.defn`` registers under the same name (tests/test_layers.py checks the worker has them all).
"""

from __future__ import annotations

from temporalio import activity

from baton.contract.messages import (
    ConversationSetup,
    DeliveryResult,
    HandoffNote,
    HelpdeskTicket,
    NoteRequest,
    OperationsEvent,
    OperationsStatus,
    OutboundMessage,
    PageRequest,
    QueueRemovalRequest,
    QueueRequest,
    QueueStatus,
    QueueStatusRequest,
    ResolvedEscalation,
    SetupRequest,
)
from baton.contract.records import (
    ConversationEndRecord,
    ConversationStartRecord,
    EscalationRecord,
    IncidentRecord,
    PickupRecord,
    ResolutionRecord,
)
from baton.contract.scoring import JudgeRequest, JudgeResult, MessageScores, ScoreRequest


class Setup:
    @activity.defn
    async def prepare_conversation(self, request: SetupRequest) -> ConversationSetup:
        """Load the policy and the customer's CRM context, and write the conversation's row when asked (a local
        activity, once per conversation)."""
        raise NotImplementedError


class Scoring:
    @activity.defn
    async def score_message(self, request: ScoreRequest) -> MessageScores:
        """The classifier's scores for one customer message (a local activity: recorded in history)."""
        raise NotImplementedError


class Routing:
    @activity.defn
    async def enqueue_conversation(self, request: QueueRequest) -> QueueStatus:
        raise NotImplementedError

    @activity.defn
    async def dequeue_conversation(self, request: QueueRemovalRequest) -> None:
        raise NotImplementedError

    @activity.defn
    async def raise_queue_priority(self, request: QueueStatusRequest) -> QueueStatus:
        raise NotImplementedError

    @activity.defn
    async def queue_status(self, request: QueueStatusRequest) -> QueueStatus:
        raise NotImplementedError


class Operations:
    @activity.defn
    async def note_resolved_escalation(self, resolved: ResolvedEscalation) -> None:
        raise NotImplementedError

    @activity.defn
    async def report_to_operations(self, event: OperationsEvent) -> None:
        raise NotImplementedError

    @activity.defn
    async def operations_status(self) -> OperationsStatus:
        raise NotImplementedError


class Delivery:
    @activity.defn
    async def deliver_to_customer(self, message: OutboundMessage) -> DeliveryResult:
        raise NotImplementedError

    @activity.defn
    async def post_helpdesk_ticket(self, ticket: HelpdeskTicket) -> DeliveryResult:
        raise NotImplementedError

    @activity.defn
    async def page_on_call(self, page: PageRequest) -> DeliveryResult:
        raise NotImplementedError


class Handoff:
    @activity.defn
    async def write_handoff_note(self, request: NoteRequest) -> HandoffNote:
        raise NotImplementedError


class Judge:
    @activity.defn
    async def judge_message(self, request: JudgeRequest) -> JudgeResult:
        """A second opinion from the LLM on uncertain classifier scores; never fails (the classifier's answer
        stands)."""
        raise NotImplementedError


class Records:
    @activity.defn
    async def record_conversation_start(self, record: ConversationStartRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_escalation(self, record: EscalationRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_pickup(self, record: PickupRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_resolution(self, record: ResolutionRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_conversation_end(self, record: ConversationEndRecord) -> None:
        raise NotImplementedError

    @activity.defn
    async def record_incident(self, record: IncidentRecord) -> None:
        raise NotImplementedError


INTERFACES = (Setup, Scoring, Routing, Operations, Delivery, Handoff, Judge, Records)
