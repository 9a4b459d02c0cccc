"""Initial tables: inbox, outbox, ledger, butter_webhooks, backfill_cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recoverkit.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("object_id", sa.String(255)),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("provider", "dedupe_key", name="uq_inbox_provider_dedupe_key"),
    )
    op.create_index("ix_inbox_state_next_attempt_at", "inbox", ["state", "next_attempt_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inbox_id", sa.Integer),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("invoice_id", sa.String(255)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("request_id", sa.String(255)),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("endpoint", "dedupe_key", name="uq_outbox_endpoint_dedupe_key"),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "ledger",
        sa.Column("invoice_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("subscription_id", sa.String(255)),
        sa.Column("psp_invoice_id", sa.String(255)),
        sa.Column("psp_subscription_id", sa.String(255)),
        sa.Column("psp_customer_id", sa.String(255)),
        sa.Column("psp_transaction_id", sa.String(255)),
        sa.Column("payment_method_id", sa.String(255)),
        sa.Column("amount", sa.String(64)),
        sa.Column("currency", sa.String(3)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_event_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("extra", sa.Text),
        sa.PrimaryKeyConstraint("invoice_id", name="pk_ledger"),
    )
    op.create_table(
        "butter_webhooks",
        sa.Column("dedupe_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("invoice_id", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("dedupe_id", name="pk_butter_webhooks"),
    )
    op.create_table(
        "backfill_cursors",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_backfill_cursors"),
    )


def downgrade() -> None:
    """Drop the tables."""
    for table in ("backfill_cursors", "butter_webhooks", "ledger", "outbox", "inbox"):
        op.drop_table(table)
