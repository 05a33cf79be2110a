"""The policy file's schema.

A policy is data: triggers (each with a category, urgency and condition),
segments that scale thresholds, lifecycle rules, and customer-facing
templates. Everything here is validated on load so that a typo fails at
`baton policy check`, never in a live conversation.
"""

from __future__ import annotations

import string
from datetime import date, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from baton.contract.messages import Intent, Topic, TriggerCategory, Urgency


class _Strict(BaseModel):
    # Unknown keys in a policy are almost always typos; reject them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntentCondition(_Strict):
    """The latest customer message has the intent. With `min_probability`, the classifier's probability
    for it must reach that value (a message scored by the rules, which have no probabilities, counts
    when the rules found the intent)."""

    kind: Literal["intent"]
    intent: Intent
    min_probability: float | None = Field(default=None, gt=0, le=1)


class TopicCondition(_Strict):
    """The latest customer message is about one of `topics` (by the classifier), optionally only near the
    account's renewal or while the account is new: a billing question weeks before renewal is worth a
    person, the same question from a new self-serve user is not."""

    kind: Literal["topic"]
    topics: list[Topic] = Field(min_length=1)
    min_probability: float | None = Field(default=None, gt=0, le=1)
    renewal_within_days: int | None = Field(default=None, ge=0, description="Renewal date at most this far ahead")
    account_younger_than_days: int | None = Field(default=None, ge=1)


class MarkerCondition(_Strict):
    kind: Literal["marker"]
    marker: str


class RepeatedQuestionCondition(_Strict):
    """The customer asks the same question (similar wording) `threshold` times."""

    kind: Literal["repeated_question"]
    threshold: int = Field(ge=2)
    similarity: float = Field(default=0.5, gt=0, le=1)


class BotRepeatingCondition(_Strict):
    """The bot gives the same answer `threshold` times."""

    kind: Literal["bot_repeating"]
    threshold: int = Field(ge=2)
    similarity: float = Field(default=0.7, gt=0, le=1)


class UnresolvedTurnsCondition(_Strict):
    """`threshold` customer messages since the start or the last resolution."""

    kind: Literal["unresolved_turns"]
    threshold: int = Field(ge=1)


class FrustrationTrendCondition(_Strict):
    """Recency-weighted mean frustration over the last `window` customer messages
    reaches `threshold`, and is not falling."""

    kind: Literal["frustration_trend"]
    window: int = Field(default=3, ge=2, le=20)
    threshold: float = Field(gt=0, le=1)


class HighValueCondition(_Strict):
    """A high-value account shows friction: frustration reaches `threshold`."""

    kind: Literal["high_value"]
    min_mrr: float = Field(ge=0)
    tiers: list[str] = Field(default_factory=list)
    threshold: float = Field(gt=0, le=1)


class AtRiskCondition(_Strict):
    """A churned or at-risk account shows friction or wants to cancel."""

    kind: Literal["at_risk"]
    health_below: float = Field(ge=0, le=100)
    lifecycle_stages: list[str] = Field(default_factory=lambda: ["churned", "at_risk"])
    flags: list[str] = Field(default_factory=lambda: ["at_risk", "churn_risk"])
    threshold: float = Field(gt=0, le=1)


Condition = Annotated[
    IntentCondition
    | TopicCondition
    | MarkerCondition
    | RepeatedQuestionCondition
    | BotRepeatingCondition
    | UnresolvedTurnsCondition
    | FrustrationTrendCondition
    | HighValueCondition
    | AtRiskCondition,
    Field(discriminator="kind"),
]

# Conditions whose `threshold` is a count (scaled and rounded up) rather than a score.
COUNT_CONDITIONS = ("repeated_question", "bot_repeating", "unresolved_turns")


class Trigger(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    category: TriggerCategory
    urgency: Urgency
    description: str
    high_priority: bool = Field(
        default=False,
        description="Still applies in segments that reserve escalation for high-priority scenarios",
    )
    scales: bool = Field(default=True, description="Segment and lifecycle factors scale its threshold")
    customer_reason: str = Field(
        default="so a person can help", description="Why the customer is being transferred, in their terms"
    )
    when: Condition


class SegmentMatch(_Strict):
    tiers: list[str] = Field(default_factory=list)
    min_mrr: float | None = Field(default=None, ge=0)


class Segment(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    match: SegmentMatch = Field(default_factory=SegmentMatch)
    threshold_factor: float = Field(gt=0, le=5, description="<1 escalates sooner, >1 later")
    high_priority_only: bool = False


class Lifecycle(_Strict):
    new_account_days: int = Field(default=30, ge=0)
    new_account_factor: float = Field(default=0.8, gt=0, le=5)
    renewal_window_days: int = Field(default=60, ge=0)
    renewal_factor: float = Field(default=0.8, gt=0, le=5)


TEMPLATE_FIELDS = {
    "escalate_immediate": {"reason", "wait"},
    "escalate_queued": {"reason", "wait"},
    "waiting_status": {"position", "wait"},
    "wait_update": {"position", "wait"},
    "sla_breached": {"position", "wait"},
    "agent_joined": {"agent"},
    "async_escalation": {"reason", "reply_time"},
    "handback": set(),
    "after_hours": {"reason", "callback_time"},
    "after_hours_status": {"callback_time"},
    "incident_status": {"incident"},
}


class Templates(_Strict):
    """Customer-facing wording. Placeholders in braces; each template allows only its own."""

    escalate_immediate: str
    escalate_queued: str
    waiting_status: str
    wait_update: str
    sla_breached: str
    agent_joined: str
    async_escalation: str
    handback: str
    after_hours: str = (
        "Our support team is offline right now. We have opened a priority ticket {reason}, and a person "
        "will get back to you by {callback_time}. You won't need to repeat yourself."
    )
    after_hours_status: str = "Your ticket is with our team; a person will get back to you by {callback_time}."
    incident_status: str = (
        "We are aware of an ongoing incident: {incident}. Our engineers are working on it and we will post "
        "updates here. Your account details are safe, and you don't need to do anything."
    )

    @model_validator(mode="after")
    def _known_placeholders(self) -> Templates:
        for name, allowed in TEMPLATE_FIELDS.items():
            text = getattr(self, name)
            try:
                used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from err
            unknown = used - allowed
            if unknown:
                allowed_text = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{name}: unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {allowed_text}")
        return self

    def render(self, name: str, **values: object) -> str:
        return getattr(self, name).format(**{k: v for k, v in values.items() if k in TEMPLATE_FIELDS[name]})


class LadderStep(_Strict):
    """The dead-zone ladder for one urgency: all times from the moment the conversation is queued."""

    update_every: timedelta = Field(description="Interval between wait-time updates to the customer")
    sla: timedelta = Field(description="Pickup target; past it the priority is raised")
    widen_after: timedelta = Field(description="Route to any available team")
    page_after: timedelta = Field(description="Page on-call")

    @model_validator(mode="after")
    def _ordered(self) -> LadderStep:
        if not timedelta(0) < self.update_every:
            raise ValueError("update_every: must be positive")
        if not (timedelta(0) < self.sla <= self.widen_after <= self.page_after):
            raise ValueError("sla, widen_after, page_after: must be positive and in that order")
        return self


class Ladder(_Strict):
    immediate: LadderStep
    queued: LadderStep


class NoteSettings(_Strict):
    max_tokens: int = Field(default=700, ge=100, le=4000)
    timeout: timedelta = Field(default=timedelta(seconds=20), description="Longest wait for the LLM note")


class Routing(_Strict):
    """Which team queue an escalation waits in: the most urgent trigger's team, else the segment's, else the default."""

    default_queue: str = "support"
    general_queue: str = Field(default="support", description="Where a conversation goes when routing is widened")
    trigger_queues: dict[str, str] = Field(default_factory=dict)
    segment_queues: dict[str, str] = Field(default_factory=dict)


class Handoff(_Strict):
    ladder: Ladder
    routing: Routing = Field(default_factory=Routing)
    reply_time: dict[Urgency, timedelta] = Field(description="Promised reply time on asynchronous channels")
    async_channels: list[str] = Field(default_factory=lambda: ["email", "ticket"])
    note: NoteSettings = Field(default_factory=NoteSettings)
    average_handle_time: timedelta = Field(
        default=timedelta(minutes=6), description="Wait estimate per position when the queue has no history yet"
    )


class Limits(_Strict):
    max_message_chars: int = Field(default=4000, ge=1, le=8000)


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TeamHours(_Strict):
    """When a team is on shift: weekly ranges ("09:00-17:30") in its time zone, minus holidays."""

    timezone: str = Field(description="IANA name, e.g. Europe/London")
    weekly: dict[Weekday, list[str]] = Field(description="Ranges per weekday; a missing day is closed")
    holidays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> TeamHours:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"timezone: unknown time zone '{self.timezone}'") from err
        for day, ranges in self.weekly.items():
            for text in ranges:
                start, sep, end = text.partition("-")
                try:
                    opens, closes = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
                except ValueError as err:
                    raise ValueError(f"weekly.{day}: '{text}' is not HH:MM-HH:MM") from err
                if not sep or closes <= opens:
                    raise ValueError(f"weekly.{day}: '{text}' must end after it starts, on the same day")
        return self


class BusinessHours(_Strict):
    default: TeamHours
    teams: dict[str, TeamHours] = Field(default_factory=dict, description="By queue name; others use the default")

    def for_queue(self, queue: str | None) -> TeamHours:
        return self.teams.get(queue or "", self.default)


class Surge(_Strict):
    """When the queue floods: thresholds that start a surge, and how conversations behave during one."""

    queue_depth: int = Field(default=25, ge=1, description="Conversations waiting across queues")
    escalations_per_hour: int = Field(default=40, ge=1)
    incident_terms: list[str] = Field(
        default_factory=lambda: ["outage", "down", "not loading", "not working", "status", "everyone", "anyone else"],
        description="Words that make a message a general incident question",
    )
    wait_factor: float = Field(default=1.5, ge=1, description="Wait estimates are multiplied by this during a surge")


class Cooling(_Strict):
    """After an escalation is resolved: the customer is sensitive for a while."""

    period: timedelta = Field(default=timedelta(hours=48))
    threshold_factor: float = Field(default=0.6, gt=0, le=1, description="Thresholds scale by this while cooling")
    page_lead_after: int = Field(default=2, ge=2, description="Escalations within one window that page a team lead")


def _idle_time(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("must be positive (null: never closes by itself)")
    return value


IdleTime = Annotated[timedelta | None, AfterValidator(_idle_time)]


class IdleClose(_Strict):
    """A conversation nobody writes in closes itself, with the reason `idle`. The idle time counts from the
    last message while the bot has the conversation (the customer's or the bot's answer), or from the
    resolution; never while the customer waits for a person or a person has it. Per channel, since a chat
    is over in minutes and an email thread in days; `null` keeps a channel open until it is closed."""

    default: IdleTime = Field(
        default=timedelta(minutes=30), description="Idle time that closes a conversation on an unlisted channel"
    )
    channels: dict[Annotated[str, Field(min_length=1)], IdleTime] = Field(
        default_factory=lambda: {"email": timedelta(days=3), "ticket": timedelta(days=3)},
        description="Idle time per channel name, over the default",
    )

    def after(self, channel: str) -> timedelta | None:
        """How long a conversation on `channel` may stay idle; None when it never closes by itself."""
        return self.channels.get(channel, self.default)


class Judge(_Strict):
    """The optional LLM judge: a message the classifier is unsure of (an intent's probability inside the
    band) goes to the configured OpenAI-compatible endpoint; its answer is recorded and used. Off unless
    enabled here and BATON_LLM_BASE_URL is set; any failure leaves the classifier's answer standing."""

    enabled: bool = False
    uncertain_low: float = Field(default=0.3, gt=0, lt=1, description="Probabilities from here ...")
    uncertain_high: float = Field(default=0.7, gt=0, lt=1, description="... to here count as unsure")
    max_tokens: int = Field(default=200, ge=50, le=2000, description="Completion tokens per call")
    token_budget: int = Field(default=4000, ge=0, description="Tokens a conversation may spend on the judge")
    timeout: timedelta = Field(default=timedelta(seconds=8), description="Longest wait for one answer")

    @model_validator(mode="after")
    def _band(self) -> Judge:
        if self.uncertain_low >= self.uncertain_high:
            raise ValueError("uncertain_low, uncertain_high: the band must be low < high")
        return self

    def unsure(self, probabilities: dict[Intent, float]) -> bool:
        return any(self.uncertain_low <= p <= self.uncertain_high for p in probabilities.values())


class Redaction(_Strict):
    """Where customer text has its personal data (emails, phones, cards, IBANs, SSNs) replaced by placeholders
    (domain/redaction.py) before it leaves Baton. The history keeps the text as sent (encrypted by the payload
    codec); these say what each recipient gets."""

    llm: bool = Field(default=True, description="The handoff note's prompt and the LLM judge's")
    helpdesk: bool = Field(default=False, description="Helpdesk tickets: the transcript and the note")
    webhooks: bool = Field(default=False, description="On-call pages: the webhook, Slack and PagerDuty")


class Policy(_Strict):
    version: Literal[1]
    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    description: str = ""
    limits: Limits = Field(default_factory=Limits)
    segments: list[Segment] = Field(min_length=1, description="First match wins; the last should match everyone")
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    triggers: list[Trigger] = Field(min_length=1)
    default_segment: str = Field(description="Segment for customers with neither tier nor MRR known")
    templates: Templates
    handoff: Handoff
    hours: BusinessHours | None = Field(default=None, description="None: humans are always on shift")
    surge: Surge = Field(default_factory=Surge)
    cooling: Cooling = Field(default_factory=Cooling)
    idle_close: IdleClose = Field(default_factory=IdleClose)
    judge: Judge = Field(default_factory=Judge)
    redaction: Redaction = Field(default_factory=Redaction)

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        for kind, ids in (("triggers", [t.id for t in self.triggers]), ("segments", [s.id for s in self.segments])):
            seen: set[str] = set()
            for i, ident in enumerate(ids):
                if ident in seen:
                    raise ValueError(f"{kind}[{i}].id: duplicate id '{ident}'")
                seen.add(ident)
        trigger_ids, segment_ids = {t.id for t in self.triggers}, {s.id for s in self.segments}
        for tid in self.handoff.routing.trigger_queues:
            if tid not in trigger_ids:
                raise ValueError(f"handoff.routing.trigger_queues: '{tid}' is not a trigger id")
        for sid in self.handoff.routing.segment_queues:
            if sid not in segment_ids:
                raise ValueError(f"handoff.routing.segment_queues: '{sid}' is not a segment id")
        if self.default_segment not in {s.id for s in self.segments}:
            raise ValueError(f"default_segment: '{self.default_segment}' is not one of the segments' ids")
        return self

    def trigger(self, trigger_id: str) -> Trigger:
        return next(t for t in self.triggers if t.id == trigger_id)
