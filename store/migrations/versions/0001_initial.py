"""Conversations, escalations, incidents and review labels.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 200
ESCALATION_ID = 2 * ID + 1
LABEL = 200
CHANNEL = 40
JSON_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(ID), nullable=False),
        sa.Column("customer_id", sa.String(ID), nullable=True),
        sa.Column("channel", sa.String(CHANNEL), nullable=True),
        sa.Column("segment", sa.String(LABEL), nullable=True),
        sa.Column("tier", sa.String(LABEL), nullable=True),
        sa.Column("policy_name", sa.String(LABEL), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.String(LABEL), nullable=True),
        sa.Column("outcome", sa.String(20), server_default="open", nullable=False),
        sa.Column("customer_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("conversation_csat", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('open', 'bot_resolved', 'escalated', 'abandoned')", name=op.f("ck_conversations_outcome")
        ),
        sa.CheckConstraint("conversation_csat BETWEEN 1 AND 5", name=op.f("ck_conversations_conversation_csat")),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversations")),
    )
    op.create_index(op.f("ix_conversations_started_at"), "conversations", ["started_at"])
    op.create_index(op.f("ix_conversations_segment_started_at"), "conversations", ["segment", "started_at"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.String(ESCALATION_ID), nullable=False),
        sa.Column("conversation_id", sa.String(ID), nullable=False),
        sa.Column("message_id", sa.String(ID), nullable=False),
        sa.Column("customer_id", sa.String(ID), nullable=True),
        sa.Column("segment", sa.String(LABEL), nullable=True),
        sa.Column("channel", sa.String(CHANNEL), nullable=True),
        sa.Column("urgency", sa.String(20), nullable=True),
        sa.Column("triggers", JSON_LIST, server_default=sa.text("'[]'"), nullable=False),
        sa.Column("queue", sa.String(LABEL), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("messages_to_escalation", sa.Integer(), nullable=True),
        sa.Column("seconds_to_escalation", sa.Float(), nullable=True),
        sa.Column("picked_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds_to_pickup", sa.Float(), nullable=True),
        sa.Column("agent_id", sa.String(ID), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("necessary", sa.Boolean(), nullable=True),
        sa.Column("csat", sa.SmallInteger(), nullable=True),
        sa.Column("handback", sa.Boolean(), nullable=True),
        sa.CheckConstraint("urgency IN ('immediate', 'queued')", name=op.f("ck_escalations_urgency")),
        sa.CheckConstraint("csat BETWEEN 1 AND 5", name=op.f("ck_escalations_csat")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.conversation_id"],
            name=op.f("fk_escalations_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_conversation_id"), "escalations", ["conversation_id"])
    op.create_index(op.f("ix_escalations_escalated_at"), "escalations", ["escalated_at"])
    op.create_index(op.f("ix_escalations_segment_escalated_at"), "escalations", ["segment", "escalated_at"])

    op.create_table(
        "incidents",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declared_by", sa.String(ID), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_started_at"), "incidents", ["started_at"])

    op.create_table(
        "review_labels",
        sa.Column("escalation_id", sa.String(ESCALATION_ID), nullable=False),
        sa.Column("reviewer", sa.String(ID), nullable=False),
        sa.Column("necessary", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_review_labels_escalation_id_escalations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("escalation_id", "reviewer", name=op.f("pk_review_labels")),
    )
    op.create_index(op.f("ix_review_labels_labelled_at"), "review_labels", ["labelled_at"])


def downgrade() -> None:
    op.drop_table("review_labels")
    op.drop_table("incidents")
    op.drop_table("escalations")
    op.drop_table("conversations")
