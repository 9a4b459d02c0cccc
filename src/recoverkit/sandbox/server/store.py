"""The sandbox's tables: everything Recover would keep, in its own database.

- ``sandbox_payment_events`` / ``sandbox_payment_method_updates``: every accepted request, verbatim
  (successes too: policies train on them).
- ``sandbox_invoices``: one row per invoice the sandbox has seen fail; ``state`` is
  ``dunning`` → ``recovered`` | ``ended``. ``claimed_by`` keeps one attempt in flight per invoice.
- ``sandbox_attempts``: one row per retry, unique idempotency key, written *before* the PSP call;
  a row without ``finished_at`` after a crash is re-run with the same key, never a new one.
- ``sandbox_card_attempts``: every charge on a card (merchant-reported and sandbox retries), the
  history the network rules count per card across invoices.
- ``sandbox_webhooks``: Retry Results and End of Dunning deliveries with their redelivery state.
- ``sandbox_policy_state``: a learning policy's state (``adaptive``'s posterior counts) and the
  last attempt it has learned from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)

from recoverkit.store.tables import UTCDateTime

__all__ = [
    "attempts",
    "card_attempts",
    "create_tables",
    "invoices",
    "metadata",
    "payment_events",
    "payment_method_updates",
    "policy_state",
    "webhooks",
]

metadata = MetaData()

payment_events = Table(
    "sandbox_payment_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("invoice_id", String(255), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Index(None, "invoice_id"),
)

payment_method_updates = Table(
    "sandbox_payment_method_updates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("payment_method_id", String(255), nullable=False),
    Column("reason", String(255)),
    Index(None, "customer_id"),
)

invoices = Table(
    "sandbox_invoices",
    metadata,
    Column("invoice_id", String(255), primary_key=True),
    Column("customer_id", String(255), nullable=False),
    Column("subscription_id", String(255), nullable=False),
    Column("psp", String(64), nullable=False),
    Column("amount", String(64), nullable=False),  # Decimal text, never float
    Column("currency", String(3), nullable=False),
    Column("transaction_id", String(255), nullable=False),
    Column("original_psp_transaction_id", String(255), nullable=False),
    Column("payment_method_id", String(255), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("first_decline", Text),  # NormalizedDecline as JSON: the failure that opened dunning
    Column("last_decline", Text),
    Column("state", String(16), nullable=False),
    Column("first_failed_at", UTCDateTime, nullable=False),
    Column("dunning_ends_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Column("end_reason", Text),
    Column("custom", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "state", "next_attempt_at"),
    Index(None, "customer_id"),
)

attempts = Table(
    "sandbox_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", String(255), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("amount", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_method_id", String(255), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("success", Boolean),
    Column("psp_transaction_id", String(255)),
    Column("network_transaction_id", String(255)),
    Column("decline", Text),
    Column("error", Text),
    UniqueConstraint("invoice_id", "attempt_no"),
)

card_attempts = Table(
    "sandbox_card_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String(255), nullable=False, unique=True),  # psp transaction id: one row each
    Column("payment_method_id", String(255), nullable=False),
    Column("invoice_id", String(255), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("network", String(32)),
    Column("approved", Boolean, nullable=False),
    Column("sent_to_network", Boolean, nullable=False),
    Column("amount", String(64)),
    Index(None, "payment_method_id", "at"),
)

webhooks = Table(
    "sandbox_webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # retry_results | end_of_dunning
    Column("invoice_id", String(255), nullable=False),
    Column("dedupe_id", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_try_at", UTCDateTime, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("delivered_at", UTCDateTime),
    Column("gave_up_at", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Index(None, "delivered_at", "gave_up_at", "next_try_at"),
)


policy_state = Table(
    "sandbox_policy_state",
    metadata,
    Column("name", String(64), primary_key=True),  # the policy's name, e.g. "adaptive"
    Column("state", Text, nullable=False),  # the policy's own JSON (AdaptivePolicy.state_json)
    Column("learned_through", Integer, nullable=False, default=0),  # last sandbox_attempts.id
    Column("observations", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)


clock_state = Table(
    "sandbox_clock",
    metadata,
    Column("name", String(32), primary_key=True),  # "simulated"
    Column("at", UTCDateTime, nullable=False),  # the simulated time last seen by the engine
)


def save_clock(engine: Engine, at: datetime) -> None:
    """Remember the simulated time (``--speed``), so a restart never moves it backwards."""
    c = clock_state.c
    with engine.begin() as conn:
        done = conn.execute(
            update(clock_state).where(c.name == "simulated", c.at < at).values(at=at)
        ).rowcount
        if not done and conn.execute(select(c.name).where(c.name == "simulated")).first() is None:
            conn.execute(insert(clock_state).values(name="simulated", at=at))


def resume_time(engine: Engine) -> datetime | None:
    """The latest simulated time the store has seen: the saved clock or any recorded event.

    The recorded times cover a crash between two saves of the clock.
    """
    with engine.connect() as conn:
        times = [
            conn.execute(select(func.max(clock_state.c.at))).scalar(),
            conn.execute(select(func.max(attempts.c.started_at))).scalar(),
            conn.execute(select(func.max(attempts.c.finished_at))).scalar(),
            conn.execute(select(func.max(webhooks.c.created_at))).scalar(),
            conn.execute(select(func.max(invoices.c.updated_at))).scalar(),
        ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def create_tables(engine: Engine) -> None:
    """Create the sandbox's tables if missing (a dev tool: no migrations)."""
    metadata.create_all(engine)
