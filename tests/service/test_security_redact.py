"""Issue 11 item 1: card numbers and security codes never reach the store or Recover.

Card-like numbers are built at run time (``with_check_digit``) so none is ever written in a file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fake_provider import FakeProvider, charge_event, signed
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import FakeRecover, Service, build_service, call, make_settings
from sqlalchemy import Engine, select

from recoverkit import redact
from recoverkit.provider import ProviderEvent, RecoverMessage, Translation
from recoverkit.schema import PaymentEvent
from recoverkit.store.tables import inbox, ledger, outbox
from recoverkit.testing.scan import with_check_digit

PAN = with_check_digit("400000123456789")  # 16 digits, Luhn-valid, built at run time
AMEX = with_check_digit("37000012345678")  # 15 digits
SPACED = " ".join(PAN[i : i + 4] for i in range(0, 16, 4))
DASHED = "-".join(PAN[i : i + 4] for i in range(0, 16, 4))
NOT_LUHN = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)


@pytest.mark.parametrize(
    "text",
    [
        f"card {PAN} declined",
        f"card {SPACED} declined",
        f"card {DASHED} declined",
        f"amex {AMEX}",
        "published test card 4242424242424242",  # still Luhn-valid: still redacted
        f"two {SPACED} {AMEX} numbers",
    ],
)
def test_card_numbers_are_redacted_in_free_text(text: str) -> None:
    scrubbed = redact.scrub_text(text)
    assert redact.REDACTED_CARD in scrubbed
    assert redact.card_numbers(scrubbed) == []
    for digits in (PAN, AMEX, "4242424242424242"):
        assert digits not in scrubbed.replace(" ", "").replace("-", "")


@pytest.mark.parametrize(
    "text",
    ["CVC: 123", "cvv=1234", "CVV2 123", "cid 4321", "security code is 987", '"cvc":"123"'],
)
def test_security_codes_are_redacted(text: str) -> None:
    scrubbed = redact.scrub_text(text)
    assert redact.REDACTED_CVC in scrubbed
    assert not any(c.isdigit() for c in scrubbed.replace("CVV2", "").replace("cvv2", ""))


@pytest.mark.parametrize(
    "text",
    [
        f"order {NOT_LUHN}",  # not Luhn-valid
        "call +1 555-309-9999",  # 11 digits
        "2026-12-08 01:37:41",
        "decided after 3 tries",  # "cid" inside a word
        "amount 12345",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact.scrub_text(text) == text


def test_json_identifiers_amounts_and_times_are_kept_byte_for_byte() -> None:
    body = json.dumps(
        {
            "pspReference": PAN,  # Adyen's 16-digit references are Luhn-valid 1 time in 10
            "merchantReference": PAN,
            "invoice_id": PAN,
            "amount": {"value": 1999, "currency": "EUR"},
            "eventDate": "2026-12-08T01:37:41+01:00",
            "reason": f"Refused {SPACED} cvc 123",
        },
        indent=2,
    )
    scrubbed = redact.scrub_json(body, event="evt_1")
    data = json.loads(scrubbed)
    assert data["pspReference"] == data["merchantReference"] == data["invoice_id"] == PAN
    assert data["reason"] == f"Refused {redact.REDACTED_CARD} cvc {redact.REDACTED_CVC}"
    # Everything outside the redacted value is unchanged, indentation included.
    assert scrubbed.replace(data["reason"], "X") == body.replace(f"Refused {SPACED} cvc 123", "X")


def test_json_without_card_data_is_returned_as_is() -> None:
    body = '{"a": 1.50, "b": "x",  "c": [1, 2.0]}'
    assert redact.scrub_json(body) is body


def test_card_numbers_as_numbers_keys_and_in_arrays_are_redacted() -> None:
    body = json.dumps({"note": [int(PAN), {"k": PAN}], PAN: "v", "cvv": 123})
    data = json.loads(redact.scrub_json(body))
    assert data == {
        "note": [redact.REDACTED_CARD, {"k": redact.REDACTED_CARD}],
        redact.REDACTED_CARD: "v",
        "cvv": redact.REDACTED_CVC,
    }


def test_deep_nesting_costs_no_recursion() -> None:
    depth = 100_000
    body = "[" * depth + json.dumps(f"x {PAN}") + "]" * depth
    scrubbed = redact.scrub_json(body)
    assert PAN not in scrubbed
    assert scrubbed.startswith("[" * depth)


def test_warning_names_event_and_path_never_the_value(caplog: pytest.LogCaptureFixture) -> None:
    before = redact.redaction_counts()
    with caplog.at_level(logging.WARNING, logger="recoverkit.redact"):
        redact.scrub_json(json.dumps({"data": {"reason": f"card {PAN} cvc 123"}}), event="evt_9")
    after = redact.redaction_counts()
    assert after["card_number"] == before["card_number"] + 1
    assert after["cvc"] == before["cvc"] + 1
    text = caplog.text
    assert "evt_9" in text
    assert "$.data.reason" in text
    assert PAN not in text
    assert "123" not in text


class LeakyProvider(FakeProvider):
    """Forwards the webhook's free text (``note``) the way a careless plugin would."""

    def translate(self, event: ProviderEvent) -> Translation:
        translation = super().translate(event)
        note = event.data.get("note")
        if note is None:
            return translation
        messages = []
        for message in translation.messages:
            body = message.body
            if isinstance(body, PaymentEvent):
                data: dict[str, Any] = body.model_dump(mode="python")
                data["custom"] = {"note": note, "nested": [{"why": note}]}
                data["transactions"][0]["outcome"]["psp_response_message"] = note
                data["transactions"][0]["outcome"]["raw_response_message"] = note
                body = PaymentEvent.model_validate(data)
            messages.append(RecoverMessage(body, message.dedupe_key, message.decline))
        return Translation(event, tuple(messages))


@pytest.fixture
def leaky(tmp_path: Path, engine: Engine) -> Service:
    settings = make_settings(tmp_path)
    svc = build_service(settings, engine, FakeRecover())
    provider = LeakyProvider()
    svc.app.state.service.providers._instances["fake"] = provider
    svc.worker.providers._instances["fake"] = provider
    svc.provider = provider
    return svc


def test_card_data_reaches_neither_the_database_nor_recover(leaky: Service, tmp_path: Path) -> None:
    note = f"Refused: card {SPACED} (cvc 123); retry with {DASHED}"
    raw, headers = signed(charge_event("evt_pan", invoice="inv_pan", note=note, extra={PAN: note}))
    response = call(leaky.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    leaky.drain()
    assert len(leaky.recover.accepted) == 1
    sent = leaky.recover.accepted[0][1].decode()
    assert redact.REDACTED_CARD in sent  # the leaky plugin's text was forwarded, scrubbed
    assert redact.card_numbers(sent) == []
    assert "cvc 123" not in sent
    with leaky.engine.connect() as conn:
        stored = [
            *conn.execute(select(inbox.c.data, inbox.c.digest)).all(),
            *conn.execute(select(outbox.c.body)).all(),
            *conn.execute(select(ledger.c.extra)).all(),
        ]
    for row in stored:
        for value in row:
            assert value is None or redact.card_numbers(str(value)) == []
    leaky.engine.dispose()
    raw_db = b"".join(p.read_bytes() for p in tmp_path.glob("rk.db*"))
    for digits in (PAN, SPACED, DASHED):
        assert digits.encode() not in raw_db


def _real_plugin_pipeline(
    tmp_path: Path, engine: Engine, name: str, provider: Any, requests: list[Any]
) -> FakeRecover:
    """Post ``requests`` to a service running the real ``provider``; drain; Recover's view."""
    import httpx

    from recoverkit import Plugins
    from recoverkit.client import RecoverClient
    from recoverkit.service import Worker, create_app
    from recoverkit.service.runtime import ProviderRegistry

    recover = FakeRecover()
    settings = make_settings(tmp_path)
    plugins = Plugins(load_entry_points=False)
    client = RecoverClient(
        api_key="rk_test_key",
        base_url=settings.recover_base_url,
        transport=httpx.MockTransport(recover.handler),
        max_attempts=1,
    )
    app = create_app(
        settings, plugins, engine, providers={name: provider}, client=client, run_worker=False
    )
    for request in requests:
        response = call(
            app, "POST", f"/webhooks/{name}", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code < 300, response.text
    worker = Worker(
        settings=settings,
        plugins=plugins,
        engine=engine,
        providers=ProviderRegistry(settings, plugins, {name: provider}),
        client=client,
    )
    while worker.run_once():
        pass
    worker.close()
    return recover


def test_adyen_refusal_reason_with_a_card_number_is_scrubbed(
    tmp_path: Path, engine: Engine
) -> None:
    """The issue's case: a signed Adyen item whose unsigned reason / refusalReasonRaw holds a
    card number and a CVC (the item HMAC covers neither)."""
    adyen = pytest.importorskip(
        "recoverkit_adyen.provider", reason="recoverkit-adyen not installed"
    )
    from recoverkit.provider import WebhookRequest

    provider = adyen.AdyenProvider.for_demo()
    sample = provider.sample_webhooks()[0]
    body = json.loads(sample.body)
    item = body["notificationItems"][0]["NotificationRequestItem"]
    assert item["success"] == "false"
    leak = f"Refused: card {SPACED} CVC 123"
    item["reason"] = leak
    item["additionalData"]["refusalReasonRaw"] = leak
    request = WebhookRequest(json.dumps(body).encode(), dict(sample.headers))
    recover = _real_plugin_pipeline(tmp_path, engine, "adyen", provider, [request])
    assert recover.accepted, "the refused authorisation was not forwarded"
    sent = b"".join(b for _, b in recover.accepted).decode()
    assert PAN not in sent.replace(" ", "")
    assert "CVC 123" not in sent
    assert redact.REDACTED_CARD in sent  # the plugin forwards the reason: scrubbed
    with engine.connect() as conn:
        stored = " ".join(str(v) for v in conn.execute(select(inbox.c.data)).scalars())
    assert PAN not in stored.replace(" ", "")
    assert redact.REDACTED_CARD in stored


def test_retry_status_answer_is_scrubbed(service: Service) -> None:
    from recoverkit.schema import RetryStatusResponse

    raw, headers = signed(charge_event("evt_1", invoice="inv_1"))
    assert (
        call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers).status_code == 200
    )
    service.drain()

    def leaky(_invoice: object) -> RetryStatusResponse:
        return RetryStatusResponse(
            retry=False, reason=f"card {SPACED} blocked", metadata={"cvv": "123", "note": PAN}
        )

    service.provider.retry_status = leaky  # type: ignore[method-assign]
    response = call(service.app, "POST", "/retry/inv_1", headers={"x-api-key": "merchant-key"})
    assert response.status_code == 200
    body = response.json()
    assert body["reason"] == f"card {redact.REDACTED_CARD} blocked"
    assert body["metadata"] == {"cvv": redact.REDACTED_CVC, "note": redact.REDACTED_CARD}


def test_redactions_are_exposed_on_metrics(service: Service) -> None:
    redact.scrub_text(f"card {PAN}")
    text = call(service.app, "GET", "/metrics").text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('recoverkit_redactions_total{kind="card_number"}')
    )
    assert float(line.split()[-1]) >= 1


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet="0123456789 -cvCVidx:", max_size=40)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["note", "cvc", "id", "k", "4242424242424242"]), inner)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=_json_values, indent=st.sampled_from([None, 2]))
def test_scrubbed_json_is_json_idempotent_and_free_of_card_numbers(
    value: Any, indent: int | None
) -> None:
    text = json.dumps(value, indent=indent)
    scrubbed = redact.scrub_json(text)
    parsed = json.loads(scrubbed)  # still JSON
    assert redact.scrub_json(scrubbed) == scrubbed

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                assert redact.card_numbers(k) == []
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str | int) and not isinstance(node, bool) and key != "id":
            assert redact.card_numbers(str(node)) == [], (key, node)

    walk(parsed, None)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_scrubbing_never_raises_on_any_text(text: str) -> None:
    redact.scrub_json(text)  # text that is not JSON: must not raise
    scrubbed = redact.scrub_text(text)
    assert redact.card_numbers(scrubbed) == []
