"""The service's durable state: inbox, outbox, ledger (SQLAlchemy 2 Core + Alembic).

SQLite in WAL mode is the default (``sqlite:///recoverkit.db``); a PostgreSQL URL works unchanged
and lets several receivers and workers share the tables.
"""

from recoverkit.store.engine import is_sqlite, make_engine
from recoverkit.store.migrate import current_revision, head_revision, is_current, upgrade
from recoverkit.store.tables import (
    backfill_cursors,
    butter_webhooks,
    inbox,
    ledger,
    metadata,
    outbox,
)

__all__ = [
    "backfill_cursors",
    "butter_webhooks",
    "current_revision",
    "head_revision",
    "inbox",
    "is_current",
    "is_sqlite",
    "ledger",
    "make_engine",
    "metadata",
    "outbox",
    "upgrade",
]
