"""The Adyen endpoint beyond the HMAC (issue 11 item 6): basic auth, eventDate, signed identity.

Adyen's HMAC signs eight item fields only (``SIGNED_FIELDS``). These tests pin what follows:
basic auth is checked as well when configured, an ``eventDate`` from the future is clamped to
the receipt time, and nothing outside the signed fields can change which invoice or customer an
item belongs to.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from adyen_helpers import events_of, item_of, load, settings, signed
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError
from recoverkit_adyen import AdyenProvider, BillingContextMissingError
from recoverkit_adyen.context import SIGNED_ITEM_FIELDS
from recoverkit_adyen.webhooks import SIGNED_FIELDS
from sqlalchemy import text
from test_service import _Loop, make_loop

from recoverkit.errors import SignatureError
from recoverkit.provider import BillingContext, ProviderEvent, WebhookRequest
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate

USER, PASSWORD = "adyen-webhooks", "correct horse battery staple"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _with_headers(request: WebhookRequest, **headers: str) -> WebhookRequest:
    return WebhookRequest(request.body, {**dict(request.headers), **headers})


@pytest.fixture
def guarded() -> AdyenProvider:
    return AdyenProvider(settings(basic_auth_username=USER, basic_auth_password=PASSWORD))


# -- basic auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        _basic(USER, "wrong"),
        _basic("someone-else", PASSWORD),
        _basic(USER, PASSWORD + "x"),
        _basic(USER, ""),
        _basic("", PASSWORD),
        "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Basic not-base64!!",
        "Basic " + base64.b64encode(f"{USER}{PASSWORD}".encode()).decode(),  # no colon
        "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
        "Basic ÿ",
    ],
)
def test_wrong_or_missing_basic_auth_is_refused_before_the_hmac(
    guarded: AdyenProvider, authorization: str | None
) -> None:
    request = signed(load("authorisation_refused_not_enough_balance.json"))
    if authorization is not None:
        request = _with_headers(request, Authorization=authorization)
    with pytest.raises(SignatureError, match="basic auth") as raised:
        guarded.verify(request)
    assert USER not in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_right_basic_auth_and_hmac_are_accepted(guarded: AdyenProvider, scheme: str) -> None:
    request = signed(load("authorisation_refused_not_enough_balance.json"))
    header = _basic(USER, PASSWORD).replace("Basic", scheme)
    [event] = events_of(guarded, _with_headers(request, Authorization=header))
    assert event.object_id == "QFQTPCQ8HXSKGK82"


def test_right_basic_auth_does_not_excuse_a_wrong_hmac(guarded: AdyenProvider) -> None:
    body = json.loads(signed(load("authorisation_refused_not_enough_balance.json")).body)
    item_of(body)["amount"]["value"] += 1
    request = WebhookRequest(json.dumps(body).encode(), {"Authorization": _basic(USER, PASSWORD)})
    with pytest.raises(SignatureError, match="HMAC"):
        guarded.verify(request)


def test_header_signed_webhooks_need_basic_auth_too(guarded: AdyenProvider) -> None:
    request = guarded.sign_test_webhook(json.dumps(load("token_updated.json")).encode())
    with pytest.raises(SignatureError, match="basic auth"):
        guarded.verify(request)
    guarded.verify(_with_headers(request, Authorization=_basic(USER, PASSWORD)))


def test_without_basic_auth_settings_no_authorization_header_is_needed(
    provider: AdyenProvider,
) -> None:
    provider.verify(signed(load("authorisation_refused_not_enough_balance.json")))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"basic_auth_username": USER}, "go together"),
        ({"basic_auth_password": PASSWORD}, "go together"),
        ({"basic_auth_username": USER, "basic_auth_password": ""}, "empty"),
        ({"basic_auth_username": "a:b", "basic_auth_password": PASSWORD}, "':'"),
    ],
)
def test_half_configured_basic_auth_fails_at_start_up(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**overrides)


def test_basic_auth_password_never_shows_in_settings_repr() -> None:
    configured = settings(basic_auth_username=USER, basic_auth_password=PASSWORD)
    assert PASSWORD not in repr(configured)
    assert PASSWORD not in str(configured.model_dump())


def test_doctor_warns_when_basic_auth_is_off(guarded: AdyenProvider) -> None:
    off = {c.name: c for c in AdyenProvider(settings()).doctor()}["adyen webhook basic auth"]
    assert off.ok is False
    assert off.detail.startswith("warning:")
    assert "RECOVERKIT_ADYEN_BASIC_AUTH_USERNAME" in off.detail
    on = {c.name: c for c in guarded.doctor()}["adyen webhook basic auth"]
    assert on.ok is True
    assert PASSWORD not in on.detail
    assert USER not in on.detail


# -- eventDate -------------------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_date", "occurred_at"),
    [
        ("2026-11-15T10:00:00+01:00", datetime(2026, 11, 15, 9, 0, tzinfo=UTC)),  # past: kept
        ("2026-11-15T12:00:00Z", RECEIVED),  # the receipt instant: kept
        ("2026-11-15T12:00:01Z", RECEIVED),  # one second ahead: clamped
        ("2036-11-15T12:00:00+05:00", RECEIVED),  # ten years ahead: clamped
    ],
)
def test_future_event_date_is_clamped_to_the_receipt_time(
    provider: AdyenProvider, event_date: str, occurred_at: datetime
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["eventDate"] = event_date
    request = signed(body)
    request = WebhookRequest(request.body, dict(request.headers), received_at=RECEIVED)
    [event] = events_of(provider, request)
    assert event.occurred_at == occurred_at
    assert event.data["eventDate"] == event_date  # the raw item is kept as received
    [message] = provider.translate(event).messages
    assert isinstance(message.body, PaymentEvent)
    assert message.body.transactions[0].psp_transaction_created_at == occurred_at


def test_typed_webhook_created_at_is_clamped_too(provider: AdyenProvider) -> None:
    body = load("token_updated.json")
    body["createdAt"] = (RECEIVED + timedelta(days=400)).isoformat()
    request = provider.sign_test_webhook(json.dumps(body).encode())
    request = WebhookRequest(request.body, dict(request.headers), received_at=RECEIVED)
    [event] = events_of(provider, request)
    assert event.occurred_at == RECEIVED


# -- identity from signed fields only --------------------------------------------------------


def test_the_signed_fields_are_the_eight_adyen_documents() -> None:
    assert SIGNED_FIELDS == (
        "pspReference",
        "originalReference",
        "merchantAccountCode",
        "merchantReference",
        "value",
        "currency",
        "eventCode",
        "success",
    )
    assert set(SIGNED_ITEM_FIELDS) | {"value", "currency"} == set(SIGNED_FIELDS)


def _identity(message_body: Any) -> tuple[Any, ...]:
    if isinstance(message_body, PaymentEvent):
        return (
            message_body.customer.id,
            message_body.customer.psp_id,
            message_body.subscription.id,
            message_body.invoice.id,
        )
    assert isinstance(message_body, PaymentMethodUpdate)
    return (message_body.customer_id, message_body.psp_customer_id)


def _identities(provider: AdyenProvider, body: dict[str, Any]) -> list[tuple[Any, ...]] | str:
    [event] = events_of(provider, signed(body))
    try:
        translation = provider.translate(event)
    except BillingContextMissingError:
        return "held"
    return [_identity(m.body) for m in translation.messages]


#: Unsigned places an attacker holding a signed item could change, and what they would claim.
_UNSIGNED_CLAIMS = st.fixed_dictionaries(
    {},
    optional={
        "metadata.rk_customer": st.sampled_from(["cus_evil", "", "cus_1001"]),
        "metadata.rk_subscription": st.sampled_from(["sub_evil", "sub_2001"]),
        "metadata.rk_invoice": st.sampled_from(["inv_evil", "inv_3001"]),
        "metadata.rk_sub_start": st.sampled_from(["2020-01-01", "2026-01-15T08:00:00Z"]),
        "metadata.rk_invoice_at": st.sampled_from(["2030-01-01T00:00:00Z", "x"]),
        "shopperReference": st.sampled_from(["cus_evil", "cus_1001", ""]),
        "recurring.shopperReference": st.just("cus_evil"),
        "tokenization.shopperReference": st.just("cus_evil"),
        "merchantOrderReference": st.just("inv_evil"),
    },
)


@pytest.mark.parametrize(
    "sample",
    [
        "authorisation_refused_not_enough_balance.json",
        "authorisation_success_account_updater.json",
        "authorisation_refused_mastercard_do_not_retry.json",
        "recurring_contract.json",
    ],
)
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    claims=_UNSIGNED_CLAIMS,
    event_date=st.sampled_from(["2026-11-15T10:00:00+01:00", "2099-01-01T00:00:00Z"]),
    reason=st.sampled_from(["Refused", "inv_evil", ""]),
)
def test_no_unsigned_field_changes_which_invoice_or_customer_an_item_belongs_to(
    provider: AdyenProvider, sample: str, claims: dict[str, str], event_date: str, reason: str
) -> None:
    body = load(sample)
    expected = _identities(provider, body)
    assert expected != "held"
    item = item_of(body)
    item["additionalData"].update(claims)
    item["eventDate"] = event_date
    item["reason"] = reason
    logger = logging.getLogger("recoverkit_adyen")
    level, logger.level = logger.level, logging.ERROR  # quiet the expected mismatch warnings
    try:
        assert _identities(provider, body) == expected
    finally:
        logger.setLevel(level)


def test_the_billing_context_hook_sees_only_the_signed_fields() -> None:
    seen: list[ProviderEvent] = []

    def hook(event: ProviderEvent) -> BillingContext:
        seen.append(event)
        return BillingContext(
            customer_id=f"cus_for_{event.data['merchantReference']}",
            subscription_id="sub_x",
            invoice_id="inv_x",
            subscription_start=datetime(2025, 1, 1, tzinfo=UTC),
            invoice_created_at=datetime(2026, 11, 1, tzinfo=UTC),
        )

    provider = AdyenProvider(settings(), billing_context=hook)
    body = load("authorisation_refused_not_enough_balance.json")
    [event] = events_of(provider, signed(body))
    provider.translate(event)
    [view] = seen
    assert set(view.data) <= {*SIGNED_ITEM_FIELDS, "amount"}
    assert "additionalData" not in view.data
    assert view.data["amount"] == {"value": 4999, "currency": "EUR"}
    assert view.dedupe_key == event.dedupe_key


def test_psp_customer_id_follows_the_signed_context_not_shopper_reference(
    provider: AdyenProvider, caplog: pytest.LogCaptureFixture
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    for key in ("shopperReference", "tokenization.shopperReference"):
        item_of(body)["additionalData"][key] = "cus_evil"
    [event] = events_of(provider, signed(body))
    with caplog.at_level(logging.WARNING, logger="recoverkit_adyen"):
        [message] = provider.translate(event).messages
    assert isinstance(message.body, PaymentEvent)
    assert (message.body.customer.id, message.body.customer.psp_id) == ("cus_1001", "cus_1001")
    assert "shopperReference differs" in caplog.text

    def hook(event: ProviderEvent) -> BillingContext:
        return BillingContext(
            customer_id="cus_1001",
            subscription_id="sub_2001",
            invoice_id="inv_3001",
            subscription_start=datetime(2025, 1, 1, tzinfo=UTC),
            invoice_created_at=datetime(2026, 11, 1, tzinfo=UTC),
            extra={"psp_customer_id": "shopper-77"},
        )

    hooked = AdyenProvider(settings(), billing_context=hook)
    [message] = hooked.translate(event).messages
    assert isinstance(message.body, PaymentEvent)
    assert message.body.customer.psp_id == "shopper-77"


def test_recurring_contract_without_a_signed_customer_is_held(provider: AdyenProvider) -> None:
    body = load("recurring_contract.json")
    item_of(body)["merchantReference"] = "signup-cus_1005"  # shopperReference alone: unsigned
    [event] = events_of(provider, signed(body))
    with pytest.raises(BillingContextMissingError, match=r"^held: "):
        provider.translate(event)


# -- through the service ---------------------------------------------------------------------


@pytest.fixture
def guarded_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Loop]:
    provider = AdyenProvider(settings(basic_auth_username=USER, basic_auth_password=PASSWORD))
    yield from make_loop(tmp_path, monkeypatch, provider)


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Loop]:
    yield from make_loop(tmp_path, monkeypatch, AdyenProvider(settings()))


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        (_basic(USER, "wrong"), 401),
        (_basic("other", PASSWORD), 401),
        (_basic(USER, PASSWORD), 200),
    ],
)
def test_service_answers_401_without_the_right_basic_auth(
    guarded_loop: _Loop, authorization: str | None, status: int
) -> None:
    request = signed(load("authorisation_refused_not_enough_balance.json"))
    if authorization is not None:
        request = _with_headers(request, Authorization=authorization)
    answer = guarded_loop.post(request)
    assert answer.status_code == status
    if status == 401:
        assert guarded_loop.inbox() == []
        assert USER not in answer.text
        assert PASSWORD not in answer.text
    else:
        assert len(guarded_loop.inbox()) == 1


def test_future_event_date_cannot_pin_the_ledger(loop: _Loop) -> None:
    """A failure dated ten years ahead must not make the later real success look older."""
    failure = load("authorisation_refused_not_enough_balance.json")
    item_of(failure)["eventDate"] = "2036-11-15T10:00:00+00:00"
    assert loop.post(signed(failure)).status_code == 200
    loop.drain()
    success = load("authorisation_refused_not_enough_balance.json")
    item = item_of(success)
    item.update(success="true", pspReference="SUCCESS0000000001", reason="")
    item["eventDate"] = datetime.now(UTC).isoformat()
    assert loop.post(signed(success)).status_code == 200
    loop.drain()
    with loop.engine.connect() as conn:
        occurred = [row[0] for row in conn.execute(text("SELECT occurred_at FROM inbox"))]
        [(state, last_event_at)] = conn.execute(
            text("SELECT state, last_event_at FROM ledger WHERE invoice_id = 'inv_3001'")
        )
    assert all(str(moment) < "2036" for moment in occurred)
    assert state != "failed"  # the success was applied
    assert str(last_event_at) < "2036"
