"""The account updater daily report: download the CSV a webhook links to, one row per card.

Braintree's ``account_updater_daily_report`` webhook carries only ``report_date`` and a
``report_url`` (valid one week). The CSV's column layout is not published in the sources this
plugin was built from, so the token and customer columns are settings
(``report_token_column``, ``report_customer_column``); rows missing either are skipped with a
warning rather than guessed.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from recoverkit.errors import MissingFactError

__all__ = ["ReportRow", "download_report", "parse_report"]

logger = logging.getLogger("recoverkit_braintree.account_updater")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One updated payment method from the report."""

    customer_id: str
    token: str


def parse_report(text: str, *, token_column: str, customer_column: str) -> list[ReportRow]:
    """The updated payment methods in a report, in file order, each token once."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if token_column not in columns or customer_column not in columns:
        raise MissingFactError(
            f"braintree: account updater report has columns {columns}, not {token_column!r} and "
            f"{customer_column!r}; set report_token_column / report_customer_column",
            provider="braintree",
        )
    rows: list[ReportRow] = []
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):
        token = (row.get(token_column) or "").strip()
        customer = (row.get(customer_column) or "").strip()
        if not token or not customer:
            logger.warning(
                "braintree account updater report line %d lacks token or customer", number
            )
            continue
        if token not in seen:
            seen.add(token)
            rows.append(ReportRow(customer_id=customer, token=token))
    return rows


def download_report(
    url: str, *, max_bytes: int, client_factory: Callable[[], httpx.Client] | None = None
) -> str:
    """GET the report, refusing bodies over ``max_bytes``; errors name the URL's host only."""
    make = client_factory or (lambda: httpx.Client(timeout=30.0, follow_redirects=True))
    host = httpx.URL(url).host
    try:
        with make() as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                raise MissingFactError(
                    f"braintree: account updater report download from {host} answered "
                    f"{response.status_code}; the link expires after a week",
                    provider="braintree",
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise MissingFactError(
                        f"braintree: account updater report is over max_report_bytes ({max_bytes})",
                        provider="braintree",
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise MissingFactError(
            f"braintree: account updater report download from {host} failed: {type(exc).__name__}",
            provider="braintree",
        ) from None
    return b"".join(chunks).decode("utf-8-sig")
