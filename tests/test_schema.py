"""The wire models accept every documented example body and refuse what the contract forbids."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recoverkit.errors import WireValidationError
from recoverkit.schema import (
    EndOfDunning,
    PaymentEvent,
    PaymentMethodUpdate,
    RecoverAccepted,
    RetryResults,
    RetryStatusRequest,
    RetryStatusResponse,
    WebhookAck,
    dumps,
    parse,
)

#: Butter's documented example bodies (source and licence: tests/data/butter/SOURCE.md).
EXAMPLES = Path(__file__).resolve().parent / "data" / "butter" / "examples.json"


def _examples() -> list[dict[str, Any]]:
    document = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    return [example["body"] for example in document["examples"]]


# Which model each unwrapped example body is, told apart by its keys.
def _model_for(body: dict[str, Any]) -> type[Any]:
    keys = set(body)
    if "transactions" in keys:
        return PaymentEvent
    if "payment_method_id" in keys and "customer_id" in keys:
        return PaymentMethodUpdate
    if "request_id" in keys:
        return RecoverAccepted
    if "retry" in keys:
        return RetryStatusResponse
    if "butter_id" in keys:
        return RetryResults
    if "recovered" in keys:
        return EndOfDunning
    if keys == {"detail"}:
        return WebhookAck
    if keys == {"custom"}:
        return RetryStatusRequest
    raise AssertionError(f"unclassified example: {sorted(keys)}")


def test_every_unwrapped_butter_example_validates() -> None:
    examples = [body for body in _examples() if set(body) != {"body"}]
    assert len(examples) >= 10
    for body in examples:
        model = _model_for(body)
        parsed = parse(model, body)
        assert isinstance(parsed, model)


def test_body_wrapped_samples_are_rejected_with_a_clear_reason() -> None:
    wrapped = [body for body in _examples() if set(body) == {"body"}]
    assert wrapped, "the research file's wrapped Retry Results sample is missing"
    for body in wrapped:
        with pytest.raises(WireValidationError, match="wrapper"):
            parse(RetryResults, body)


def _payment(**transaction: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ts_1",
        "psp_transaction_id": "ch_1",
        "psp": "stripe",
        "acquirer_country": "US",
        "amount": 12.23,
        "currency": "USD",
        "funding_source": "CREDIT",
        "payment_method_id": "pm_1",
        "psp_transaction_created_at": "2023-10-25T03:57:26Z",
        "scheme": "visa",
        "success": False,
        "outcome": {"raw_response_message": "insufficient_funds", "response_type": "soft_decline"},
    }
    base.update(transaction)
    return {
        "customer": {"id": "c1"},
        "subscription": {"id": "s1", "start_date": "2023-10-25T03:57:26Z"},
        "invoice": {"id": "i1", "created_at": "2023-10-25T03:57:26Z"},
        "transactions": [base],
    }


def test_validation_error_names_the_field_path() -> None:
    body = _payment(amount="lots")
    with pytest.raises(WireValidationError) as info:
        parse(PaymentEvent, body)
    assert "transactions[0].amount" in str(info.value)


def test_unknown_field_is_refused_by_name() -> None:
    body = _payment(psp_id="ch_1")  # the one table's spelling; examples use psp_transaction_id
    with pytest.raises(WireValidationError, match=r"transactions\[0\]\.psp_id"):
        parse(PaymentEvent, body)


def test_empty_transactions_are_refused() -> None:
    body = _payment()
    body["transactions"] = []
    with pytest.raises(WireValidationError, match="transactions"):
        parse(PaymentEvent, body)


def test_psp_outside_butters_list_needs_extra_psp_names() -> None:
    body = _payment(psp="mollie")
    with pytest.raises(WireValidationError, match="extra_psp_names"):
        parse(PaymentEvent, body)
    parsed = parse(PaymentEvent, body, context={"extra_psp_names": {"mollie"}})
    assert parsed.transactions[0].psp == "mollie"


def test_amount_is_exact_decimal_and_encoded_as_a_json_number() -> None:
    parsed = parse(PaymentEvent, json.dumps(_payment(amount=0.1)))
    assert parsed.transactions[0].amount == Decimal("0.1")
    encoded = dumps(parsed)
    assert '"amount":0.10,' in encoded  # USD has two decimals
    big = parse(PaymentEvent, _payment(amount=Decimal("1234567890123.45")))
    assert '"amount":1234567890123.45,' in dumps(big)
    assert parse(PaymentEvent, dumps(big)).transactions[0].amount == Decimal("1234567890123.45")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (8, "GBP", "8.00"),
        (8.0, "GBP", "8.00"),
        (Decimal("8.000"), "GBP", "8.00"),
        (1200, "JPY", "1200"),
        (1200.0, "JPY", "1200"),
        (Decimal("1.2E+3"), "JPY", "1200"),
        (3, "KWD", "3.000"),
        (Decimal("0"), "USD", "0.00"),
        (
            Decimal("10.50"),
            "CLP",
            "10.50",
        ),  # finer than ISO (Adyen's CLP): digits kept, not rounded
        (Decimal("10.00"), "CLP", "10"),
    ],
)
def test_amounts_go_out_with_the_currencys_decimals(amount: Any, currency: str, text: str) -> None:
    parsed = parse(PaymentEvent, _payment(amount=amount, currency=currency))
    encoded = dumps(parsed)
    assert f'"amount":{text},' in encoded
    # Still a JSON number, and the same value when read back.
    again = json.loads(encoded, parse_float=Decimal, parse_int=Decimal)
    assert again["transactions"][0]["amount"] == Decimal(str(amount))
    assert parse(PaymentEvent, encoded).transactions[0].amount == Decimal(str(amount))


def test_retry_amounts_go_out_as_exact_decimal_text() -> None:
    results = parse(
        RetryResults,
        {
            "timestamp": "2025-01-22T22:31:08",
            "butter_id": "1",
            "invoice_id": "i",
            "success": True,
            "original_amount": 8.0,
            "amount_collected": Decimal("0"),
            "currency": "gbp",
        },
    )
    encoded = dumps(results)
    assert '"original_amount":8.00,' in encoded
    assert '"amount_collected":0.00,' in encoded
    status = parse(RetryStatusResponse, {"retry": True, "amount": 12.5})
    assert '"amount":12.5,' in dumps(status)  # no currency in this message: the value as given
    assert '"amount":1000,' in dumps(RetryStatusResponse(retry=True, amount=Decimal("1E+3")))


def test_amounts_beyond_what_a_json_number_carries_are_refused() -> None:
    with pytest.raises(WireValidationError, match="15 digits"):
        parse(PaymentEvent, _payment(amount=Decimal("12345678901234567.89")))


def test_string_amounts_are_refused() -> None:
    with pytest.raises(WireValidationError, match="JSON number"):
        parse(PaymentEvent, json.dumps(_payment(amount="12.23")))


def test_float_amounts_from_python_keep_their_wire_text() -> None:
    parsed = parse(PaymentEvent, _payment(amount=19.99))
    assert parsed.transactions[0].amount == Decimal("19.99")


def test_negative_and_nan_amounts_are_refused() -> None:
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(WireValidationError, match="amount"):
            parse(PaymentEvent, _payment(amount=bad))


def test_currency_must_be_iso_4217() -> None:
    with pytest.raises(WireValidationError, match="currency"):
        parse(PaymentEvent, _payment(currency="XYZ"))
    assert parse(PaymentEvent, _payment(currency="usd")).transactions[0].currency == "USD"


def test_naive_timestamps_are_read_as_utc_and_sent_with_z() -> None:
    parsed = parse(
        EndOfDunning,
        {"timestamp": "2025-04-05T19:41:01.396550", "invoice_id": "i", "recovered": True},
    )
    assert parsed.timestamp.utcoffset() is not None
    assert '"timestamp":"2025-04-05T19:41:01.396550Z"' in dumps(parsed)
    offset = parse(
        EndOfDunning, {"timestamp": "2025-04-05T21:41:01+02:00", "invoice_id": "i", "recovered": 1}
    )
    assert '"timestamp":"2025-04-05T19:41:01Z"' in dumps(offset)


def test_billing_period_any_case_is_sent_lower_case() -> None:
    body = _payment()
    body["subscription"]["billing"] = {"period": "Month", "frequency": 1}
    assert '"period":"month"' in dumps(parse(PaymentEvent, body))
    body["subscription"]["billing"] = {"period": "fortnight"}
    with pytest.raises(WireValidationError, match=r"subscription\.billing\.period"):
        parse(PaymentEvent, body)


def test_funding_source_any_case_is_sent_upper_case() -> None:
    assert '"funding_source":"DEBIT"' in dumps(
        parse(PaymentEvent, _payment(funding_source="debit"))
    )


def test_success_with_a_decline_type_is_refused() -> None:
    with pytest.raises(WireValidationError, match="response_type"):
        parse(PaymentEvent, _payment(success=True))


def test_retry_results_amount_without_currency_is_refused() -> None:
    body = {
        "timestamp": "2025-01-22T22:31:08",
        "butter_id": "1",
        "invoice_id": "i",
        "success": True,
        "amount_collected": 5,
    }
    with pytest.raises(WireValidationError, match="currency"):
        parse(RetryResults, body)


def test_retry_status_request_keeps_top_level_filters() -> None:
    parsed = parse(RetryStatusRequest, {"brand": "Pepsi"})
    assert parsed.model_extra == {"brand": "Pepsi"}


def test_card_credentials_never_appear_in_repr() -> None:
    response = parse(
        RetryStatusResponse,
        {
            "retry": True,
            "payment_methods": [
                {"id": "pm_1", "token": {"id": "4457010000000009", "card_validation_number": "445"}}
            ],
        },
    )
    text = repr(response) + str(response)
    assert "4457010000000009" not in text
    assert "445'" not in text
    # ... but they are sent on the wire when recoverkit answers RetryStatus.
    assert '"card_validation_number":"445"' in dumps(response)


def test_json_schema_says_an_amount_is_a_json_number_both_ways() -> None:
    for mode in ("validation", "serialization"):
        schema = PaymentEvent.model_json_schema(mode=mode)
        amount = schema["$defs"]["Transaction"]["properties"]["amount"]
        assert (amount["type"], amount["minimum"]) == ("number", 0), mode


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (-1, "negative"),
        (Decimal("-0.01"), "negative"),
        (float("nan"), "finite"),
        (Decimal("Infinity"), "finite"),
        (True, "JSON number"),
        ([1], "JSON number"),
    ],
)
def test_each_bad_amount_is_refused_with_its_reason(bad: Any, reason: str) -> None:
    with pytest.raises(WireValidationError, match=rf"transactions\[0\]\.amount.*{reason}"):
        parse(PaymentEvent, _payment(amount=bad))
