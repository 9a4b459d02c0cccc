"""The service's tables (SQLAlchemy 2 Core). Alembic migrations in ``migrations/`` create them.

- ``inbox``: one row per PSP event, unique on (provider, dedupe_key); written before the 2xx ack.
- ``outbox``: one row per Recover message, unique on (endpoint, dedupe_key); sent by the worker.
- ``ledger``: one row per invoice forwarded, so Recover's callbacks (which carry only the
  merchant's invoice id) find their provider and PSP ids.
- ``butter_webhooks``: Retry Results / End of Dunning deliveries seen, by dedupe id.
- ``backfill_cursors``: where a resumable backfill stopped, per provider.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UTCDateTime",
    "backfill_cursors",
    "butter_webhooks",
    "inbox",
    "ledger",
    "metadata",
    "outbox",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


inbox = Table(
    "inbox",
    metadata,
    _id(),
    Column("provider", String(64), nullable=False),
    Column("dedupe_key", String(255), nullable=False),
    Column("event_type", String(128), nullable=False),
    Column("object_id", String(255)),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),  # the event's raw object as JSON
    # pending → done | ignored | failed
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Column("last_error", Text),
    Column("digest", String(64)),  # SHA-256 of the payload as received; kept after a purge
    Column("payload_purged_at", UTCDateTime),  # retention or erasure dropped ``data``
    UniqueConstraint("provider", "dedupe_key"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "received_at"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("inbox_id", Integer),
    Column("provider", String(64), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("dedupe_key", String(255), nullable=False),
    Column("invoice_id", String(255)),
    Column("body", Text, nullable=False),  # exact JSON to send
    # pending → sent | dead
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Column("request_id", String(255)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("forgotten_at", UTCDateTime),  # erasure requested: anonymise the body once sent
    UniqueConstraint("endpoint", "dedupe_key"),
    Index(None, "state", "next_attempt_at"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("invoice_id", String(255), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("customer_id", String(255)),
    Column("subscription_id", String(255)),
    Column("psp_invoice_id", String(255)),
    Column("psp_subscription_id", String(255)),
    Column("psp_customer_id", String(255)),
    Column("psp_transaction_id", String(255)),
    Column("payment_method_id", String(255)),
    Column("amount", String(64)),  # Decimal text, never float
    Column("currency", String(3)),
    # failed | paid | recovered | dunning_ended
    Column("state", String(16), nullable=False),
    Column("last_event_at", UTCDateTime, nullable=False),  # orders out-of-order deliveries
    Column("updated_at", UTCDateTime, nullable=False),
    Column("extra", Text),
    Column("forgotten_at", UTCDateTime),  # customer data anonymised by ``recoverkit forget``
)

butter_webhooks = Table(
    "butter_webhooks",
    metadata,
    Column("dedupe_id", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("invoice_id", String(255)),
    Column("state", String(16), nullable=False),  # processing | done
    Column("received_at", UTCDateTime, nullable=False),
    # kind + invoice id + canonical body: a replay is recognised whatever its header or bytes
    Column("message_key", String(64)),
    Index(None, "message_key", unique=True),
)

backfill_cursors = Table(
    "backfill_cursors",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("cursor", Text),
    Column("events", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)
