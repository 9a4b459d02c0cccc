"""backfill: transaction search by date windows, oldest first, resumable from a cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bt_support import cassette
from recoverkit_braintree.provider import BraintreeProvider

from recoverkit.schema import PaymentEvent

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 3, tzinfo=UTC)


def test_backfill_yields_successes_and_failures_oldest_first(provider: BraintreeProvider) -> None:
    bodies: list[str] = []

    def capture(request: Any) -> Any:
        if request.body:  # vcrpy also passes the cassette's stored requests, which have no body
            body = request.body
            bodies.append(body.decode() if isinstance(body, bytes) else body)
        return request

    with cassette("backfill_two_days", before_record_request=capture) as cass:
        items = list(provider.backfill(SINCE, UNTIL))
    assert cass.all_played
    # The window is sent in UTC: the SDK writes the datetime's digits followed by "Z".
    assert '<min type="datetime">2026-11-01T00:00:00Z</min>' in bodies[0]
    assert '<max type="datetime">2026-11-02T00:00:00Z</max>' in bodies[0]
    assert [e.object_id for e, _ in items] == ["txn_b1", "txn_b2", "txn_b3"]
    assert [e.data["status"] for e, _ in items] == ["settled", "processor_declined", "settled"]
    assert items[0][1] == "2026-11-01T08:00:00+00:00|txn_b1"


def test_backfill_resumes_after_the_cursor(provider: BraintreeProvider) -> None:
    with cassette("backfill_resume"):
        items = list(provider.backfill(SINCE, UNTIL, cursor="2026-11-01T08:00:00+00:00|txn_b1"))
    assert [e.object_id for e, _ in items] == ["txn_b2", "txn_b3"]


def test_backfilled_events_translate_from_the_search_results(provider: BraintreeProvider) -> None:
    with cassette("backfill_two_days"):
        items = list(provider.backfill(SINCE, UNTIL))
    # Subscriptions are not in the search cassette: serve sub_demo_1 from another one.
    with cassette("retry_status_past_due"):
        translation = provider.translate(items[1][0])
    [message] = translation.messages
    assert isinstance(message.body, PaymentEvent)
    assert message.body.transactions[-1].psp_transaction_id == "txn_b2"
    assert message.body.transactions[-1].success is False
