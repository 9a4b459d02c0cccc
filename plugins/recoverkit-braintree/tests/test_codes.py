"""The decline table and transaction → NormalizedDecline mapping (no HTTP: SDK objects from XML)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from recoverkit_braintree._sdk import braintree
from recoverkit_braintree.codes import decline_for, decline_table, funding_source, table_key
from recoverkit_braintree.webhooks import notification_attributes

from recoverkit.declines import Advice, DeclineCategory, ResponseType


def _txn(**fields: str) -> Any:
    inner = "".join(
        f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>" for k, v in fields.items()
    )
    xml = (
        "<notification><kind>x</kind><subject><transaction><id>t1</id><amount>10.00</amount>"
        f"{inner}</transaction></subject></notification>"
    ).encode()
    attributes = notification_attributes(xml)["subject"]["transaction"]
    return braintree.Transaction(None, attributes)


def test_table_is_valid_and_every_row_has_a_source_url() -> None:
    table = decline_table()
    table.validate()
    assert all(row.source.startswith("https://") for row in table.rows)
    assert table.lookup("2001") is not None


def test_braintree_type_column_matches_the_research_for_sdk_confirmed_codes() -> None:
    # research 1.5: codes confirmed by the SDK's tests: 2000 soft, 2004 hard, 2015 hard, 3000 soft.
    labels = {row.code: row.extra["bt_type"] for row in decline_table().rows}
    assert (labels["2000"], labels["2004"], labels["2015"], labels["3000"]) == (
        "soft",
        "hard",
        "hard",
        "soft",
    )


def test_successful_transaction_has_no_decline() -> None:
    assert (
        decline_for(_txn(status="submitted_for_settlement", processor_response_code="1000")) is None
    )


def test_insufficient_funds_is_soft() -> None:
    decline = decline_for(_txn(status="processor_declined", processor_response_code="2001"))
    assert decline is not None
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert decline.response_type is ResponseType.SOFT
    assert decline.raw_code == "2001"


def test_codes_in_the_generic_range_use_the_range_row() -> None:
    assert table_key("processor_declined", "2500", None) == "2109-2999"
    decline = decline_for(_txn(status="processor_declined", processor_response_code="2500"))
    assert decline is not None
    assert decline.category is DeclineCategory.GENERIC_SOFT
    assert decline.raw_code == "2500"
    assert decline.recognized


def test_unknown_code_falls_back_with_a_warning_and_braintrees_hard_label(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        decline = decline_for(
            _txn(
                status="processor_declined",
                processor_response_code="2077",
                processor_response_type="hard_declined",
            )
        )
    assert decline is not None
    assert not decline.recognized
    assert decline.category is DeclineCategory.GENERIC_SOFT
    assert decline.response_type is ResponseType.HARD
    assert "2077" in caplog.text


def test_mac_03_makes_any_decline_do_not_try_again() -> None:
    decline = decline_for(
        _txn(status="processor_declined", processor_response_code="2001", merchant_advice_code="03")
    )
    assert decline is not None
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    assert decline.response_type is ResponseType.HARD


def test_unknown_status_is_treated_as_a_decline_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        decline = decline_for(_txn(status="brand_new_status"))
    assert decline is not None
    assert "brand_new_status" in caplog.text


def test_funding_source_from_bin_indicators() -> None:
    debit = _txn(status="settled")
    debit.credit_card_details = braintree.CreditCard(None, {"debit": "Yes", "prepaid": "No"})
    assert funding_source(debit).value == "DEBIT"
    unknown = _txn(status="settled")
    unknown.credit_card_details = braintree.CreditCard(None, {"debit": "Unknown"})
    assert funding_source(unknown).value == "UNKNOWN"
