"""Issue 10's Braintree decline classes, table-driven: what reaches Recover must be true.

Each case is a transaction as Braintree's XML API shapes it, read by the SDK, turned into
Recover's ``transactions[]`` item by :func:`recoverkit_braintree.translate.attempt`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from recoverkit_braintree._sdk import braintree
from recoverkit_braintree.codes import decline_for, decline_table
from recoverkit_braintree.translate import attempt, issuer_country
from recoverkit_braintree.webhooks import notification_attributes

from recoverkit.declines import Advice, DeclineCategory, ResponseType
from recoverkit.rules import Verdict, may_retry

SOFT, HARD = ResponseType.SOFT, ResponseType.HARD


def _txn(card: dict[str, str] | None = None, **fields: str) -> Any:
    """An SDK ``Transaction`` from XML (hyphenated tags, as Braintree sends them)."""

    def tags(values: dict[str, str]) -> str:
        return "".join(
            f"<{k.replace('_', '-')}>{v}</{k.replace('_', '-')}>" for k, v in values.items()
        )

    card_xml = f"<credit-card><token>pm_1</token>{tags(card or {})}</credit-card>"
    xml = (
        "<notification><kind>x</kind><subject><transaction><id>t1</id><amount>10.00</amount>"
        "<currency-iso-code>USD</currency-iso-code>"
        '<created-at type="datetime">2026-12-01T10:00:00Z</created-at>'
        f"<customer><id>cust_1</id></customer>{card_xml}{tags(fields)}"
        "</transaction></subject></notification>"
    ).encode()
    attributes = notification_attributes(xml)["subject"]["transaction"]
    return braintree.Transaction(None, attributes)


def _wire(txn: Any) -> dict[str, Any]:
    item, _ = attempt(txn, subscription=None, acquirer_country="US")
    wire: dict[str, Any] = json.loads(item.model_dump_json(exclude_none=True))
    return wire


# -- item 4: issuer_country alpha-3 -> alpha-2 ------------------------------------------------


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("USA", "US"),
        ("DEU", "DE"),
        ("JPN", "JP"),
        ("GBR", "GB"),
        ("usa", "US"),
        ("FR", "FR"),
        ("Unknown", None),
        ("", None),
        ("XXX", None),
        ("U1A", None),
    ],
)
def test_issuer_country_is_sent_as_alpha_2(given: str, sent: str | None) -> None:
    assert issuer_country(given) == sent
    txn = _txn(
        card={"country_of_issuance": given} if given else {},
        status="processor_declined",
        processor_response_code="2001",
    )
    assert _wire(txn).get("issuer_country") == sent


# -- item 5: settlement declines carry the settlement outcome ---------------------------------

SETTLEMENT_CASES = [
    # (settlement code, text, ACH return code, raw code, category, type, code sent)
    ("4001", "Settlement Declined", None, "4001", DeclineCategory.GENERIC_SOFT, SOFT, 4001),
    ("4001", "Settlement Declined", "R01", "R01", DeclineCategory.INSUFFICIENT_FUNDS, SOFT, 4001),
    ("4001", "Settlement Declined", "R02", "R02", DeclineCategory.ACCOUNT_INVALID, HARD, 4001),
    ("4001", "Settlement Declined", "R03", "R03", DeclineCategory.ACCOUNT_INVALID, HARD, 4001),
    (
        "4001",
        "Settlement Declined",
        "R07",
        "R07",
        DeclineCategory.REVOKED_BY_CARDHOLDER,
        HARD,
        4001,
    ),
    ("4001", "Settlement Declined", "R16", "R16", DeclineCategory.NOT_PERMITTED, HARD, 4001),
    ("4005", "PayPal Risk Rejected", None, "4005", DeclineCategory.FRAUD_SUSPECTED, HARD, 4005),
    ("4006", "Capture Amount Exceeded", None, "4006", DeclineCategory.REQUEST_INVALID, HARD, 4006),
    # An ACH return code given where the settlement code goes.
    ("R09", "Uncollected Funds", None, "R09", DeclineCategory.INSUFFICIENT_FUNDS, SOFT, None),
    # A settlement code not in the table: the generic settlement row, raw code kept.
    ("4099", "Something New", None, "4099", DeclineCategory.GENERIC_SOFT, SOFT, 4099),
]


@pytest.mark.parametrize(
    ("code", "text", "ach", "raw", "category", "rtype", "sent_code"), SETTLEMENT_CASES
)
@pytest.mark.parametrize("status", ["settlement_declined", "settlement_failed"])
def test_settlement_decline_carries_the_settlement_outcome(
    status: str,
    code: str,
    text: str,
    ach: str | None,
    raw: str,
    category: DeclineCategory,
    rtype: ResponseType,
    sent_code: int | None,
) -> None:
    fields = {
        "status": status,
        # The authorization succeeded before settlement failed: Braintree keeps "1000 Approved".
        "processor_response_code": "1000",
        "processor_response_text": "Approved",
        "additional_processor_response": "1000 : Approved",
        "processor_settlement_response_code": code,
        "processor_settlement_response_text": text,
    }
    if ach:
        fields["ach_return_code"] = ach
    txn = _txn(**fields)
    decline = decline_for(txn)
    assert decline is not None
    assert (decline.raw_code, decline.category, decline.response_type) == (raw, category, rtype)
    assert decline.recognized
    wire = _wire(txn)
    outcome = wire["outcome"]
    assert wire["success"] is False
    assert "Approved" not in json.dumps(outcome)
    assert outcome.get("processor_response_code") == sent_code
    assert outcome["psp_response_message"] == text
    assert code in outcome["raw_response_message"]
    assert text in outcome["raw_response_message"]
    if ach:
        assert ach in outcome["raw_response_message"]
        assert outcome["network_status"] == ach
    assert outcome["response_type"] == rtype.value


def test_settlement_decline_without_any_code_uses_the_settlement_row() -> None:
    txn = _txn(status="settlement_declined", processor_response_code="1000")
    decline = decline_for(txn)
    assert decline is not None
    assert decline.recognized
    assert decline.category is DeclineCategory.GENERIC_SOFT
    outcome = _wire(txn)["outcome"]
    assert outcome.get("processor_response_code") is None
    assert "Approved" not in json.dumps(outcome)
    assert outcome["raw_response_message"] == "settlement declined"


# -- item 6: gateway rejections: raw code = the reason, message says what happened -------------

GATEWAY_CASES = [
    ("excessive_retry", DeclineCategory.BLOCKED_BY_PSP, HARD, "excessive retries"),
    ("fraud", DeclineCategory.FRAUD_SUSPECTED, HARD, "fraud"),
    ("risk_threshold", DeclineCategory.FRAUD_SUSPECTED, HARD, "risk threshold"),
    ("cvv", DeclineCategory.CARD_DATA_INVALID, HARD, "CVV"),
    ("avs", DeclineCategory.CARD_DATA_INVALID, HARD, "AVS"),
    ("avs_and_cvv", DeclineCategory.CARD_DATA_INVALID, HARD, "AVS and the CVV"),
    ("three_d_secure", DeclineCategory.AUTHENTICATION_REQUIRED, HARD, "3D Secure"),
    ("duplicate", DeclineCategory.REQUEST_INVALID, SOFT, "duplicate"),
    ("application_incomplete", DeclineCategory.REQUEST_INVALID, HARD, "application"),
    ("token_issuance", DeclineCategory.REQUEST_INVALID, HARD, "token"),
]


@pytest.mark.parametrize(("reason", "category", "rtype", "words"), GATEWAY_CASES)
def test_gateway_rejection_raw_code_is_the_reason(
    reason: str, category: DeclineCategory, rtype: ResponseType, words: str
) -> None:
    # Braintree gives no processor response for a rejection it never sent to the processor.
    txn = _txn(
        status="gateway_rejected",
        gateway_rejection_reason=reason,
        processor_response_text="Unknown",
    )
    decline = decline_for(txn)
    assert decline is not None
    assert decline.raw_code == reason
    assert (decline.category, decline.response_type) == (category, rtype)
    assert decline.sent_to_network is False
    outcome = _wire(txn)["outcome"]
    for field in ("raw_response_message", "psp_response_message"):
        assert reason in outcome[field]
        assert words.lower() in outcome[field].lower()
        assert "Unknown" not in outcome[field]
    assert "processor_response_code" not in outcome
    assert outcome["response_type"] == rtype.value


def test_gateway_rejection_without_a_reason_is_blocked_by_psp() -> None:
    decline = decline_for(_txn(status="gateway_rejected"))
    assert decline is not None
    assert decline.recognized
    assert decline.category is DeclineCategory.BLOCKED_BY_PSP
    outcome = _wire(_txn(status="gateway_rejected"))["outcome"]
    assert "no reason given" in outcome["raw_response_message"]


def test_excessive_retry_is_never_retried() -> None:
    decline = decline_for(
        _txn(status="gateway_rejected", gateway_rejection_reason="excessive_retry")
    )
    assert decline is not None
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    now = datetime.now(UTC)
    assert may_retry(decline, [], now=now).verdict is Verdict.NEVER


# -- item 15: a transaction status is never a decline code ------------------------------------

STATUS_CASES = [
    # (fields, expected key row, raw code, category, type)
    ({"status": "failed"}, "failed", DeclineCategory.ISSUER_UNAVAILABLE, SOFT),
    (
        {"status": "failed", "processor_response_code": "3000"},
        "3000",
        DeclineCategory.ISSUER_UNAVAILABLE,
        SOFT,
    ),
    ({"status": "processor_declined"}, "processor_declined", DeclineCategory.GENERIC_SOFT, SOFT),
    (
        {"status": "processor_declined", "processor_response_code": "2001"},
        "2001",
        DeclineCategory.INSUFFICIENT_FUNDS,
        SOFT,
    ),
    ({"status": "gateway_rejected"}, "gateway_rejected", DeclineCategory.BLOCKED_BY_PSP, HARD),
    (
        {"status": "settlement_declined"},
        "settlement_declined",
        DeclineCategory.GENERIC_SOFT,
        SOFT,
    ),
]


@pytest.mark.parametrize(("fields", "raw", "category", "rtype"), STATUS_CASES)
def test_each_declined_status_maps_explicitly(
    fields: dict[str, str],
    raw: str,
    category: DeclineCategory,
    rtype: ResponseType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        decline = decline_for(_txn(**fields))
    assert decline is not None
    assert decline.recognized, fields
    assert "unknown decline code" not in caplog.text
    assert (decline.raw_code, decline.category, decline.response_type) == (raw, category, rtype)
    assert decline_table().lookup(fields["status"]) is not None
