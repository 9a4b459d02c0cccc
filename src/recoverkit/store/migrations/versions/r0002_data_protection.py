"""Data protection: payload digests and purge markers, erasure markers, replay-proof Butter keys.

- ``inbox.digest``: SHA-256 of the stored payload (kept after the payload is purged, for audit).
- ``inbox.payload_purged_at``: when retention (or ``recoverkit forget``) dropped the payload.
- ``outbox.forgotten_at``: an erasure request covers this row; its body is anonymised once sent.
- ``ledger.forgotten_at``: the row's customer data was anonymised by ``recoverkit forget``.
- ``butter_webhooks.message_key``: kind + invoice id + canonical body, unique, so a replayed
  Retry Results / End of Dunning message is recognised whatever its dedupe header or byte form.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from recoverkit.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the unique index."""
    op.add_column("inbox", sa.Column("digest", sa.String(64)))
    op.add_column("inbox", sa.Column("payload_purged_at", UTCDateTime))
    op.add_column("outbox", sa.Column("forgotten_at", UTCDateTime))
    op.add_column("ledger", sa.Column("forgotten_at", UTCDateTime))
    op.add_column("butter_webhooks", sa.Column("message_key", sa.String(64)))
    op.create_index(
        "ix_butter_webhooks_message_key", "butter_webhooks", ["message_key"], unique=True
    )
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_inbox_received_at", table_name="inbox")
    op.drop_index("ix_butter_webhooks_message_key", table_name="butter_webhooks")
    with op.batch_alter_table("butter_webhooks") as batch:
        batch.drop_column("message_key")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("forgotten_at")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("forgotten_at")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("payload_purged_at")
        batch.drop_column("digest")
