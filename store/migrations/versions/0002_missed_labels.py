"""Missed-escalation labels: conversations that should have been handed off, from which message.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 200


def upgrade() -> None:
    op.create_table(
        "missed_labels",
        sa.Column("conversation_id", sa.String(ID), nullable=False),
        sa.Column("reviewer", sa.String(ID), nullable=False),
        sa.Column("message_id", sa.String(ID), nullable=False),
        sa.Column("source", sa.String(20), server_default="review", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('review', 'agent')", name=op.f("ck_missed_labels_source")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.conversation_id"],
            name=op.f("fk_missed_labels_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "reviewer", name=op.f("pk_missed_labels")),
    )
    op.create_index(op.f("ix_missed_labels_labelled_at"), "missed_labels", ["labelled_at"])


def downgrade() -> None:
    op.drop_table("missed_labels")
