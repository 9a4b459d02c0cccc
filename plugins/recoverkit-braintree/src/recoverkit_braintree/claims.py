"""Per-subscription retry claims: the guard ``subscription.retry_charge`` lacks.

``retry_charge`` takes no idempotency key, so before calling it the provider records a claim
(subscription, attempt's idempotency key, time). After a crash the claim tells the next call to
look the attempt up in the subscription's transactions instead of charging again.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

__all__ = ["Claim", "ClaimStore", "MemoryClaims", "SqliteClaims", "open_claims"]


@dataclass(frozen=True, slots=True)
class Claim:
    """An attempt about to be (or already) charged on a subscription."""

    subscription_id: str
    idempotency_key: str
    claimed_at: datetime
    transaction_id: str | None = None


class ClaimStore(Protocol):
    """Where claims live; one open claim per subscription."""

    def get(self, subscription_id: str) -> Claim | None:
        """The subscription's claim, if any."""

    def put(self, claim: Claim) -> None:
        """Record (or replace) the subscription's claim."""

    def complete(self, subscription_id: str, transaction_id: str) -> None:
        """Attach the transaction the claimed attempt produced."""

    def release(self, subscription_id: str) -> None:
        """Drop the claim (the request was refused before any charge)."""


class MemoryClaims:
    """Claims in process memory: enough for tests and one process that never crashes."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}
        self._lock = threading.Lock()

    def get(self, subscription_id: str) -> Claim | None:
        with self._lock:
            return self._claims.get(subscription_id)

    def put(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.subscription_id] = claim

    def complete(self, subscription_id: str, transaction_id: str) -> None:
        with self._lock:
            claim = self._claims.get(subscription_id)
            if claim is not None:
                self._claims[subscription_id] = replace(claim, transaction_id=transaction_id)

    def release(self, subscription_id: str) -> None:
        with self._lock:
            self._claims.pop(subscription_id, None)


class SqliteClaims:
    """Claims in a SQLite file, so they survive a crash of the process."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS braintree_retry_claims ("
            " subscription_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL,"
            " claimed_at TEXT NOT NULL, transaction_id TEXT)"
        )

    def get(self, subscription_id: str) -> Claim | None:
        with self._lock:
            row = self._db.execute(
                "SELECT subscription_id, idempotency_key, claimed_at, transaction_id"
                " FROM braintree_retry_claims WHERE subscription_id = ?",
                (subscription_id,),
            ).fetchone()
        if row is None:
            return None
        return Claim(row[0], row[1], datetime.fromisoformat(row[2]), row[3])

    def put(self, claim: Claim) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO braintree_retry_claims VALUES (?, ?, ?, ?)",
                (
                    claim.subscription_id,
                    claim.idempotency_key,
                    claim.claimed_at.isoformat(),
                    claim.transaction_id,
                ),
            )

    def complete(self, subscription_id: str, transaction_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE braintree_retry_claims SET transaction_id = ? WHERE subscription_id = ?",
                (transaction_id, subscription_id),
            )

    def release(self, subscription_id: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM braintree_retry_claims WHERE subscription_id = ?", (subscription_id,)
            )


def open_claims(path: Path | None) -> ClaimStore:
    """A SQLite store at ``path``, or a memory store when ``path`` is None."""
    return SqliteClaims(path) if path is not None else MemoryClaims()
