"""Dialect-specific statements (both SQLite and PostgreSQL speak ``INSERT … ON CONFLICT``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["upsert_insert"]


def upsert_insert(conn: Connection, table: Table) -> Any:
    """A dialect-specific INSERT that supports ``on_conflict_do_nothing`` / ``_do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name!r}")
