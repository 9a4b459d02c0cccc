"""Retry Results and End of Dunning writes carry deterministic idempotency keys derived from
Recover's delivery (issue 12 item 6): a redelivery, or two deliveries racing past the read, make
one write at Stripe. Replays the recorded cassettes of test_outbound.py and reads the headers of
the requests the plugin sends now (vcr hands each live request to ``before_record_request``)."""

from __future__ import annotations

from typing import Any

import pytest
from recoverkit_stripe import StripeProvider
from recoverkit_stripe.reconcile import delivery_key

from recoverkit.provider import EndOfDunningPolicy
from recoverkit.testing.recording import cassette_vcr

from .conftest import CASSETTES
from .test_outbound import NOTICE, REF, SUCCESS, make_provider

SENT: list[tuple[str, str | None]] = []


def _capture(request: Any) -> Any:
    SENT.append((request.method, request.headers.get("Idempotency-Key")))
    return request


REPLAY = cassette_vcr(
    str(CASSETTES), filter_headers=["authorization"], before_record_request=_capture
)


def written_keys() -> set[str | None]:
    return {key for method, key in SENT if method != "GET"}


@pytest.fixture
def provider() -> StripeProvider:
    SENT.clear()
    return make_provider(max_network_retries=0)


def test_keys_are_the_same_for_every_delivery_and_differ_per_message() -> None:
    again = SUCCESS.model_copy()  # a redelivery parses to an equal message
    assert delivery_key("metadata", SUCCESS) == delivery_key("metadata", again)
    assert delivery_key("metadata", SUCCESS) == "recoverkit:metadata:bt_RK1"
    other = SUCCESS.model_copy(update={"butter_id": "bt_RK9"})
    assert delivery_key("metadata", other) != delivery_key("metadata", SUCCESS)
    later = NOTICE.model_copy(update={"timestamp": NOTICE.timestamp.replace(day=21)})
    assert delivery_key("void", NOTICE) == delivery_key("void", NOTICE.model_copy())
    assert delivery_key("void", later) != delivery_key("void", NOTICE)
    assert len(delivery_key("void", NOTICE)) <= 255  # Stripe's limit


def test_the_metadata_update_carries_the_result_key(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("reconcile_annotates_paid_invoice.yaml"):
        SENT.clear()  # loading the cassette passed the recorded requests through _capture
        provider.reconcile(SUCCESS, REF)
    assert written_keys() == {"recoverkit:metadata:bt_RK1"}


@pytest.mark.parametrize(
    ("policy", "cassette_name", "action"),
    [
        (
            EndOfDunningPolicy.MARK_UNCOLLECTIBLE,
            "end_dunning_mark_uncollectible.yaml",
            "uncollectible",
        ),
        (EndOfDunningPolicy.VOID, "end_dunning_void.yaml", "void"),
        (EndOfDunningPolicy.CANCEL_SUBSCRIPTION, "end_dunning_cancel_subscription.yaml", "cancel"),
    ],
)
def test_end_of_dunning_writes_carry_the_notice_key(
    provider: StripeProvider, policy: EndOfDunningPolicy, cassette_name: str, action: str
) -> None:
    with REPLAY.use_cassette(cassette_name):
        SENT.clear()  # loading the cassette passed the recorded requests through _capture
        provider.end_dunning(NOTICE, REF, policy)
    assert written_keys() == {delivery_key(action, NOTICE)}
