"""The endpoints Recover calls: RetryStatus, Retry Results, End of Dunning."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fake_provider import charge_event, signed
from service_support import Service, call

from recoverkit.signing import signed_headers
from recoverkit.store import repo

KEY = {"x-api-key": "merchant-key"}
BASIC = {"authorization": "Basic " + base64.b64encode(b"butter:s3cret").decode()}
SECRET = "example_signing_secret"


@pytest.fixture
def forwarded(service: Service) -> Service:
    """The fake PSP's failed invoice inv_1 went through the pipeline (so the ledger knows it)."""
    raw, headers = signed(charge_event("evt_1", invoice="inv_1", amount=1999))
    assert (
        call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers).status_code == 200
    )
    service.drain()
    return service


def butter(
    body: dict[str, object], dedupe: str = "d-1", **extra: str
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = signed_headers(raw, secret=SECRET, expiry=int(time.time()) + 3600, dedupe_id=dedupe)
    return raw, {**headers, **extra}


RESULT = {
    "timestamp": "2025-01-22T22:31:08.893377",
    "butter_id": "1040432066964226052",
    "invoice_id": "inv_1",
    "success": True,
    "original_amount": 19.99,
    "amount_collected": 19.99,
    "currency": "USD",
    "dunning_complete": True,
    "custom": {},
}
EOD = {
    "timestamp": "2025-04-05T19:41:01.396550",
    "invoice_id": "inv_1",
    "recovered": False,
    "custom": None,
}


# -- RetryStatus --------------------------------------------------------------------------------


def test_retry_status_for_open_invoice_says_retry_with_amount(forwarded: Service) -> None:
    response = call(forwarded.app, "POST", "/retry/inv_1", json={}, headers=KEY)
    assert response.status_code == 200
    assert response.json() == {
        "retry": True,
        "amount": 19.99,
        "metadata": {},
        "payment_methods": [],
    }
    assert forwarded.provider.calls == [("retry_status", "inv_1")]


def test_retry_status_merchant_veto_refuses(forwarded: Service) -> None:
    forwarded.hooks.vetoed.add("inv_1")
    response = call(forwarded.app, "POST", "/retry/inv_1", headers=KEY)
    assert response.json()["retry"] is False
    assert response.json()["reason"] == "merchant veto"


def test_retry_status_provider_refusal_is_passed_on(forwarded: Service) -> None:
    forwarded.provider.closed_invoices.add("inv_1")
    body = call(forwarded.app, "POST", "/retry/inv_1", headers=KEY).json()
    assert (body["retry"], body["reason"]) == (False, "User Cancellation")


def test_retry_status_unknown_invoice_is_404(forwarded: Service) -> None:
    response = call(forwarded.app, "POST", "/retry/inv_nope", headers=KEY)
    assert response.status_code == 404
    assert response.json() == {"detail": "An invoice with the provided ID cannot be found"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "wrong"}, BASIC, {"authorization": "Basic !!notbase64"}],
)
def test_retry_status_bad_credentials_is_401(forwarded: Service, headers: dict[str, str]) -> None:
    response = call(forwarded.app, "POST", "/retry/inv_1", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing or invalid API key"}
    assert forwarded.provider.calls == []


def test_retry_status_provider_error_is_500(
    forwarded: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(_invoice: object) -> None:
        raise RuntimeError("stripe down")

    monkeypatch.setattr(forwarded.provider, "retry_status", boom)
    response = call(forwarded.app, "POST", "/retry/inv_1", headers=KEY)
    assert response.status_code == 500
    assert response.json() == {"detail": "A server error has occurred"}


# -- Retry Results ------------------------------------------------------------------------------


def test_retry_result_reconciles_once_and_acknowledges(forwarded: Service) -> None:
    raw, headers = butter(RESULT)
    for _ in range(2):  # the second delivery is a duplicate (same dedupe id)
        response = call(
            forwarded.app,
            "POST",
            "/webhooks/retry-results",
            content=raw,
            headers={**headers, **KEY},
        )
        assert response.status_code == 200
        assert response.json() == {"detail": "Event delivered successfully"}
    assert forwarded.provider.calls == [("reconcile", "inv_1")]
    assert forwarded.hooks.results == ["inv_1"]
    assert repo.get_ledger(forwarded.engine, "inv_1").state == "recovered"  # type: ignore[union-attr]


def test_retry_result_with_expires_header_spelling(forwarded: Service) -> None:
    raw, headers = butter(RESULT)
    headers["X-Butter-Webhook-Expires"] = headers.pop("X-Butter-Webhook-Expiration")
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda raw, h: (raw, {**h, "X-Butter-Webhook-Signature": "0" * 64}), 401),
        (lambda raw, h: (raw, {k: v for k, v in h.items() if "Signature" not in k}), 401),
        (lambda raw, h: (raw.replace(b"true", b"false", 1), h), 401),
        (lambda raw, h: (raw, {**h, "Content-Type": "text/plain"}), 415),
        (lambda raw, h: (raw, {k: v for k, v in h.items() if k != "x-api-key"}), 401),
    ],
)
def test_retry_result_bad_input_is_refused_and_nothing_happens(
    forwarded: Service, change: object, status: int
) -> None:
    raw, headers = change(*butter(RESULT, **KEY))  # type: ignore[operator]
    response = call(forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers=headers)
    assert response.status_code == status
    assert "\n" not in response.json()["detail"]
    assert forwarded.provider.calls == []


def test_retry_result_expired_is_401(forwarded: Service) -> None:
    raw = json.dumps(RESULT).encode()
    headers = signed_headers(raw, secret=SECRET, expiry=int(time.time()) - 120, dedupe_id="x")
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize("body", [{"invoice_id": "inv_1"}, {"body": RESULT}, [1, 2]])
def test_retry_result_invalid_body_is_400(forwarded: Service, body: object) -> None:
    raw, headers = butter(body)  # type: ignore[arg-type]
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 400


def test_retry_result_for_unknown_invoice_is_404_and_can_be_redelivered(forwarded: Service) -> None:
    raw, headers = butter({**RESULT, "invoice_id": "inv_later"}, dedupe="d-late")
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 404
    raw2, headers2 = signed(charge_event("evt_2", invoice="inv_later"))
    call(forwarded.app, "POST", "/webhooks/fake", content=raw2, headers=headers2)
    forwarded.drain()
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 200


def test_failing_reconcile_is_500_and_redelivery_is_processed(
    forwarded: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = forwarded.provider.reconcile

    def boom(*_a: object) -> None:
        raise RuntimeError("PSP down")

    monkeypatch.setattr(forwarded.provider, "reconcile", boom)
    raw, headers = butter(RESULT)
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 500
    monkeypatch.setattr(forwarded.provider, "reconcile", original)
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 200
    assert forwarded.provider.calls == [("reconcile", "inv_1")]


# -- End of Dunning -----------------------------------------------------------------------------


def test_end_of_dunning_with_basic_auth_applies_policy_once(forwarded: Service) -> None:
    raw, headers = butter(EOD, dedupe="eod-1")
    for _ in range(2):
        response = call(
            forwarded.app,
            "POST",
            "/webhooks/end-of-dunning",
            content=raw,
            headers={**headers, **BASIC},
        )
        assert response.status_code == 200
        assert response.json() == {"detail": "Event delivered successfully"}
    assert forwarded.provider.calls == [("end_dunning:none", "inv_1")]
    assert forwarded.hooks.ended == ["inv_1"]
    assert repo.get_ledger(forwarded.engine, "inv_1").state == "dunning_ended"  # type: ignore[union-attr]


def test_end_of_dunning_refuses_the_other_endpoints_credentials(forwarded: Service) -> None:
    raw, headers = butter(EOD)
    response = call(
        forwarded.app, "POST", "/webhooks/end-of-dunning", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 401
    assert forwarded.provider.calls == []


def test_delivery_being_processed_elsewhere_is_409_and_not_applied(forwarded: Service) -> None:
    from datetime import UTC, datetime

    assert (
        repo.claim_butter_webhook(
            forwarded.engine, "d-busy", "retry_results", "inv_1", datetime.now(UTC)
        )
        == "new"
    )
    raw, headers = butter(RESULT, dedupe="d-busy")
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 409
    assert forwarded.provider.calls == []


def test_retry_status_without_the_capability_answers_from_the_ledger(
    forwarded: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recoverkit.provider import Capability

    monkeypatch.setattr(
        type(forwarded.provider),
        "capabilities",
        frozenset(type(forwarded.provider).capabilities - {Capability.RETRY_STATUS}),
    )
    body = call(forwarded.app, "POST", "/retry/inv_1", headers=KEY).json()
    assert (body["retry"], body["amount"]) == (True, 19.99)
    raw, headers = butter(RESULT)
    call(forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY})
    body = call(forwarded.app, "POST", "/retry/inv_1", headers=KEY).json()
    assert (body["retry"], body["reason"]) == (False, "invoice is recovered")
    assert ("retry_status", "inv_1") not in forwarded.provider.calls


def test_a_delivery_abandoned_mid_processing_is_taken_over_later(forwarded: Service) -> None:
    from datetime import UTC, datetime, timedelta

    long_ago = datetime.now(UTC) - timedelta(hours=1)
    assert (
        repo.claim_butter_webhook(forwarded.engine, "d-crash", "retry_results", "inv_1", long_ago)
        == "new"
    )  # a handler crashed after this, without finishing or releasing
    raw, headers = butter(RESULT, dedupe="d-crash")
    response = call(
        forwarded.app, "POST", "/webhooks/retry-results", content=raw, headers={**headers, **KEY}
    )
    assert response.status_code == 200
    assert forwarded.provider.calls == [("reconcile", "inv_1")]
