"""Each class of Stripe decline, table-driven, in both invoice shapes and outside an invoice.

The classes (docs/providers/stripe.md, "Declines"): an explicit ``advice_code:
do_not_try_again`` is always hard and never retried; ``outcome.type = "invalid"`` is a request
error (``request_invalid``, hard, raw code ``outcome.reason``) even though no network saw it; a
block that carries a decline code is decided by that code; only a block without one is
``blocked_by_psp``. Each case runs through ``decline_from_charge`` alone and through the whole
translation of ``invoice.payment_failed`` (legacy and basil shapes) and of a non-invoice
``charge.failed``, so the wire body Recover receives is checked too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from recoverkit_stripe.codes import decline_from_charge

from recoverkit.declines import Advice, DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.rules import Verdict, may_retry

from .conftest import FakeFacts, load
from .test_translate import only_payment, run

NOW = datetime(2026, 12, 1, tzinfo=UTC)
HARD, SOFT = ResponseType.HARD, ResponseType.SOFT
DNTA = Advice.DO_NOT_TRY_AGAIN


@dataclass(frozen=True)
class Case:
    """A failed charge's decline fields, and what it must normalize to."""

    name: str
    outcome: dict[str, Any]
    category: DeclineCategory
    response_type: ResponseType
    raw_code: str
    verdict: Verdict
    sent_to_network: bool = True
    advice: Advice | None = None
    #: The PaymentIntent's ``last_payment_error`` for this charge (``charge`` is filled in).
    error: dict[str, Any] | None = None
    failure_code: str = "card_declined"
    network: str = "visa"
    extra: dict[str, Any] = field(default_factory=dict)


def issuer(reason: str, **more: Any) -> dict[str, Any]:
    return {"type": "issuer_declined", "network_status": "declined_by_network", "reason": reason}


BLOCK = {"type": "blocked", "network_status": "not_sent_to_network"}
INVALID = {"type": "invalid", "network_status": "not_sent_to_network"}

CASES = [
    # -- an explicit do-not-try-again (research §4.2; PITFALLS "Advice beats the table") --------
    Case(
        "advice on the outcome makes a soft code hard",
        {**issuer("generic_decline"), "advice_code": "do_not_try_again"},
        DeclineCategory.GENERIC_SOFT,
        HARD,
        "generic_decline",
        Verdict.NEVER,
        advice=DNTA,
    ),
    Case(
        "advice on the PaymentIntent's error makes a soft code hard",
        issuer("do_not_honor"),
        DeclineCategory.GENERIC_SOFT,
        HARD,
        "do_not_honor",
        Verdict.NEVER,
        advice=DNTA,
        error={
            "code": "card_declined",
            "decline_code": "do_not_honor",
            "advice_code": "do_not_try_again",
        },
    ),
    Case(
        "advice beats insufficient funds' try-again advice",
        {**issuer("insufficient_funds"), "advice_code": "do_not_try_again"},
        DeclineCategory.INSUFFICIENT_FUNDS,
        HARD,
        "insufficient_funds",
        Verdict.NEVER,
        advice=DNTA,
    ),
    Case(
        "mastercard MAC 03 on a soft code",
        {**issuer("do_not_honor"), "network_advice_code": "03"},
        DeclineCategory.GENERIC_SOFT,
        HARD,
        "do_not_honor",
        Verdict.NEVER,
        advice=DNTA,
        network="mastercard",
    ),
    # -- outcome.type = invalid (research §4.3: an invalid API call) ---------------------------
    Case(
        "a live card in test mode is an invalid request, not a block",
        {**INVALID, "reason": "test_mode_live_card"},
        DeclineCategory.REQUEST_INVALID,
        HARD,
        "test_mode_live_card",
        Verdict.NEVER,
        sent_to_network=False,
        error={"code": "card_declined", "decline_code": "testmode_decline"},
    ),
    Case(
        "an invalid request without a reason",
        INVALID,
        DeclineCategory.REQUEST_INVALID,
        HARD,
        "invalid",
        Verdict.NEVER,
        sent_to_network=False,
    ),
    Case(
        "an invalid request whatever its decline code says",
        {**INVALID, "reason": "test_mode_live_card"},
        DeclineCategory.REQUEST_INVALID,
        HARD,
        "test_mode_live_card",
        Verdict.NEVER,
        sent_to_network=False,
        error={"code": "card_declined", "decline_code": "insufficient_funds"},
    ),
    # -- blocks with a decline code: the code decides (research §9; declines/codes) ------------
    Case(
        "a block-list block with merchant_blacklist is fraud, hard",
        {**BLOCK, "reason": "rule"},
        DeclineCategory.FRAUD_SUSPECTED,
        HARD,
        "merchant_blacklist",
        Verdict.NEVER,
        sent_to_network=False,
        advice=DNTA,
        error={"code": "card_declined", "decline_code": "merchant_blacklist"},
    ),
    Case(
        "a Radar block with fraudulent is fraud, hard",
        {**BLOCK, "reason": "highest_risk_level", "risk_level": "highest"},
        DeclineCategory.FRAUD_SUSPECTED,
        HARD,
        "fraudulent",
        Verdict.NEVER,
        sent_to_network=False,
        advice=DNTA,
        error={"code": "card_declined", "decline_code": "fraudulent"},
    ),
    Case(
        "a decline code Stripe put in the block's reason decides too",
        {**BLOCK, "reason": "merchant_blacklist"},
        DeclineCategory.FRAUD_SUSPECTED,
        HARD,
        "merchant_blacklist",
        Verdict.NEVER,
        sent_to_network=False,
        advice=DNTA,
    ),
    # -- blocks without a decline code: blocked_by_psp (support article on excessive retries) --
    Case(
        "Stripe's excessive-retry guard (decline code only the generic_decline mask)",
        {**BLOCK, "reason": "previously_declined_do_not_retry"},
        DeclineCategory.BLOCKED_BY_PSP,
        SOFT,
        "previously_declined_do_not_retry",
        Verdict.NOT_BEFORE,
        sent_to_network=False,
        error={"code": "card_declined", "decline_code": "generic_decline"},
    ),
    Case(
        "a custom Radar rule block without a decline code",
        {**BLOCK, "reason": "rule"},
        DeclineCategory.BLOCKED_BY_PSP,
        SOFT,
        "rule",
        Verdict.NOT_BEFORE,
        sent_to_network=False,
    ),
    Case(
        "a block with neither reason nor code",
        BLOCK,
        DeclineCategory.BLOCKED_BY_PSP,
        SOFT,
        "blocked",
        Verdict.NOT_BEFORE,
        sent_to_network=False,
    ),
    # -- control: an ordinary soft issuer decline --------------------------------------------------
    Case(
        "an issuer's insufficient funds stays soft",
        {**issuer("insufficient_funds"), "advice_code": "try_again_later"},
        DeclineCategory.INSUFFICIENT_FUNDS,
        SOFT,
        "insufficient_funds",
        Verdict.RETRY,
        advice=Advice.TRY_AGAIN_LATER,
    ),
]
IDS = [case.name for case in CASES]


def failed_charge(case: Case, base: dict[str, Any]) -> dict[str, Any]:
    charge = copy.deepcopy(base)
    outcome = {
        "risk_level": "normal",
        "seller_message": "Stripe said no.",
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        **case.outcome,
    }
    charge.update(status="failed", failure_code=case.failure_code, outcome=outcome)
    charge["payment_method_details"]["card"].update(network=case.network, brand=case.network)
    return charge


def error_for(case: Case, charge_id: str) -> dict[str, Any] | None:
    return {"type": "card_error", **case.error, "charge": charge_id} if case.error else None


def assert_case(case: Case, decline: NormalizedDecline | None) -> None:
    assert decline is not None
    assert decline.category is case.category
    assert decline.response_type is case.response_type
    assert decline.raw_code == case.raw_code
    assert decline.sent_to_network is case.sent_to_network
    assert decline.advice is case.advice
    assert may_retry(decline, [], now=NOW).verdict is case.verdict


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_decline_from_charge(case: Case) -> None:
    base = load("charge.failed.non_invoice")["data"]["object"]
    charge = failed_charge(case, base)
    assert_case(case, decline_from_charge(charge, error_for(case, charge["id"])))


def invoice_facts(case: Case) -> FakeFacts:
    """The fake API with the invoice attempt's charge (ch_RKfail01) and its error replaced."""
    facts = FakeFacts()
    charge = failed_charge(case, facts.store["charge"]["ch_RKfail01"])
    facts.store["charge"]["ch_RKfail01"] = charge
    page = facts.store["charges_of"]["pi_RKdemo01"]["data"]
    page[:] = [charge if c["id"] == "ch_RKfail01" else c for c in page]
    facts.store["payment_intent"]["pi_RKdemo01"]["last_payment_error"] = error_for(
        case, "ch_RKfail01"
    )
    return facts


@pytest.mark.parametrize("shape", ["legacy", "basil"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_invoice_payment_failed_in_both_shapes(case: Case, shape: str) -> None:
    translation = run(f"invoice.payment_failed.{shape}", invoice_facts(case))
    payment = only_payment(translation)
    (message,) = translation.messages
    assert_case(case, message.decline)
    (tx,) = payment.transactions
    assert tx.psp_transaction_id == "ch_RKfail01"
    assert tx.outcome.raw_response_message == case.raw_code
    assert tx.outcome.response_type == case.response_type.value


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_non_invoice_charge_failed(case: Case) -> None:
    data = load("charge.failed.non_invoice")
    charge = failed_charge(case, data["data"]["object"])
    data["data"]["object"] = charge
    facts = FakeFacts()
    facts.store["payment_intent"]["pi_RKoneoff01"]["last_payment_error"] = error_for(
        case, charge["id"]
    )
    translation = run(data, facts)
    (tx,) = only_payment(translation).transactions
    assert_case(case, translation.messages[0].decline)
    assert tx.outcome.raw_response_message == case.raw_code
    assert tx.outcome.response_type == case.response_type.value


def test_an_error_for_another_charge_is_not_this_charges_decline_code() -> None:
    # A blocked charge must not borrow the decline code of an older attempt's error.
    case = next(c for c in CASES if c.raw_code == "rule")
    base = load("charge.failed.non_invoice")["data"]["object"]
    charge = failed_charge(case, base)
    error = {"code": "card_declined", "decline_code": "merchant_blacklist", "charge": "ch_other"}
    decline = decline_from_charge(charge, error)
    assert decline is not None
    assert (decline.category, decline.raw_code) == (DeclineCategory.BLOCKED_BY_PSP, "rule")
