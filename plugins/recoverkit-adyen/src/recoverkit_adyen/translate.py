"""Pure translation of Adyen events into Recover messages (no network, no clock).

- ``AUTHORISATION`` (ContAuth), success or failure: a PaymentEvent with one transaction; with
  ``realtimeAccountUpdaterStatus`` CardChanged / CardExpiryChanged / CloseAccount also a
  PaymentMethodUpdate (the account updater changed the stored card).
- ``CAPTURE`` success: ignored (the AUTHORISATION item carried the attempt).
- ``CAPTURE`` failure and ``CAPTURE_FAILED``: a PaymentEvent with a failed transaction
  (``captured=false``).
- ``RECURRING_CONTRACT`` success: PaymentMethodUpdate ``added`` (``pspReference`` is the token),
  for the customer of the signed ``merchantReference`` (or the ``billing_context`` hook).
- ``recurring.token.created`` / ``updated`` / ``disabled``: PaymentMethodUpdate ``added`` /
  ``updated`` / ``removed``.
- anything else: ignored, with the reason.

Identity (customer, subscription, invoice, and the customer's id at Adyen) comes from the
billing context, which is decided by HMAC-signed fields only (:mod:`recoverkit_adyen.context`).
``shopperReference`` in ``additionalData`` is unsigned: it is compared, never trusted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from recoverkit.errors import MalformedWebhookError
from recoverkit.provider import BillingContext, ProviderEvent, RecoverMessage, Translation
from recoverkit.schema import FundingSource, PaymentEvent, PaymentMethodUpdate, parse, to_major
from recoverkit.schema.money import UnknownCurrencyError
from recoverkit_adyen.codes import network_name, normalize_refusal
from recoverkit_adyen.context import (
    BillingContextMissingError,
    reference_customer,
    shopper_reference,
)

__all__ = ["TranslateOptions", "translate_event"]

logger = logging.getLogger("recoverkit_adyen")

ContextResolver = Callable[[ProviderEvent], BillingContext]

_BIN: Final = re.compile(r"^[0-9]{6,8}$")
_COUNTRY: Final = re.compile(r"^[A-Za-z]{2}$")
#: Adyen ``fundingSource`` → Recover ``funding_source``. CHARGE and DEFFERED_DEBIT (Adyen's
#: spelling) have no Recover equivalent.
_FUNDING: Final = {
    "CREDIT": FundingSource.CREDIT,
    "DEBIT": FundingSource.DEBIT,
    "PREPAID": FundingSource.PREPAID,
    "PREPAID_RELOADABLE": FundingSource.PREPAID,
    "PREPAID_NONRELOADABLE": FundingSource.PREPAID,
    "CHARGE": FundingSource.UNCATEGORIZED,
    "DEFFERED_DEBIT": FundingSource.UNCATEGORIZED,
}
#: Real-time account updater results that change the stored card, with Recover's ``reason``.
_RTAU_REASONS: Final = {
    "CardChanged": "network_updated",
    "CardExpiryChanged": "network_updated",
    "CloseAccount": "account_closed",
}
_TOKEN_REASONS: Final = {
    "recurring.token.created": "added",
    "recurring.token.updated": "updated",
    "recurring.token.disabled": "removed",
}


@dataclass(frozen=True, slots=True)
class TranslateOptions:
    """Settings translation depends on."""

    acquirer_country: str | None = None
    contauth_only: bool = True


def _additional(item: Mapping[str, Any]) -> Mapping[str, Any]:
    value = item.get("additionalData")
    return value if isinstance(value, dict) else {}


def _str(mapping: Mapping[str, Any], key: str) -> str | None:
    """A non-blank string value, stripped; None for anything else (hot path: kept minimal)."""
    value = mapping.get(key)
    if value.__class__ is not str:
        return None
    value = value.strip()
    return value or None


def _succeeded(item: Mapping[str, Any]) -> bool:
    return str(item.get("success", "")).lower() == "true"


def _held(event: ProviderEvent, what: str) -> BillingContextMissingError:
    return BillingContextMissingError(
        f"held: adyen {event.type} {event.dedupe_key}: {what}",
        provider="adyen",
        object_id=event.object_id,
    )


def _payment_method_id(event: ProviderEvent, context: BillingContext) -> str:
    additional = _additional(event.data)
    for key in ("tokenization.storedPaymentMethodId", "recurring.recurringDetailReference"):
        if value := _str(additional, key):
            return value
    extra = context.extra.get("payment_method_id")
    if isinstance(extra, str) and extra:
        return extra
    raise _held(
        event,
        "no stored payment method id (additionalData tokenization.storedPaymentMethodId or "
        "recurring.recurringDetailReference; enable them under Webhooks > Additional settings, or "
        "return extra={'payment_method_id': …} from the billing_context hook)",
    )


def _psp_customer(event: ProviderEvent, context: BillingContext) -> str:
    """The customer's id at Adyen (``shopperReference``), as the signed context says.

    The hook may give it as ``extra["psp_customer_id"]``; by the documented convention it is the
    customer id. The unsigned ``shopperReference`` of the item is only compared with it.
    """
    extra = context.extra.get("psp_customer_id")
    chosen = extra if isinstance(extra, str) and extra else context.customer_id
    claimed = shopper_reference(event.data)
    if claimed is not None and claimed != chosen:
        logger.warning(
            "adyen %s: unsigned shopperReference differs from the signed billing context's "
            "customer; using the signed one (return extra={'psp_customer_id': …} from the "
            "billing_context hook if your shopper references differ from customer ids)",
            event.dedupe_key,
        )
    return chosen


def _acquirer_country(event: ProviderEvent, context: BillingContext, default: str | None) -> str:
    value = context.extra.get("acquirer_country") or default
    if isinstance(value, str) and _COUNTRY.match(value):
        return value.upper()
    raise _held(
        event,
        "acquirer country unknown: set RECOVERKIT_ADYEN_ACQUIRER_COUNTRY or return "
        "extra={'acquirer_country': 'NL'} from the billing_context hook",
    )


def _amount(event: ProviderEvent) -> tuple[Any, str]:
    amount = event.data.get("amount")
    value = amount.get("value") if isinstance(amount, dict) else None
    currency = amount.get("currency") if isinstance(amount, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or not isinstance(currency, str):
        raise MalformedWebhookError(f"adyen: {event.dedupe_key} has no integer amount.value")
    try:
        return to_major(value, currency, psp="adyen"), currency.upper()
    except UnknownCurrencyError as exc:
        raise MalformedWebhookError(f"adyen: {event.dedupe_key}: {exc}") from None


def _payment_event(
    event: ProviderEvent,
    context: BillingContext,
    options: TranslateOptions,
    *,
    success: bool,
    psp_transaction_id: str,
    captured: bool | None,
    fallback_code: str | None = None,
) -> RecoverMessage:
    item, additional = event.data, _additional(event.data)
    amount, currency = _amount(event)
    network = network_name(_str(item, "paymentMethod"))
    decline = None
    reason = _str(item, "reason")
    raw = _str(additional, "refusalReasonRaw")
    outcome: dict[str, Any]
    if not success:
        decline = normalize_refusal(
            reason=reason,
            raw=raw,
            inferred=_str(additional, "inferredRefusalReason"),
            merchant_advice_code=_str(additional, "merchantAdviceCode"),
            network=network,
            fallback=fallback_code,
        )
        outcome = {
            "raw_response_message": raw or reason or "Refused",
            "psp_response_message": reason,
            "response_type": decline.response_type.value,
        }
    else:
        # A successful item's reason is "authCode:last4:expiry": card data, never forwarded.
        outcome = {"raw_response_message": raw or "Authorised"}
    funding = _FUNDING.get((_str(additional, "fundingSource") or "").upper(), FundingSource.UNKNOWN)
    card_bin = _str(additional, "cardBin")
    issuer = _str(additional, "issuerCountry") or _str(additional, "cardIssuingCountry")
    transaction_id = context.extra.get("transaction_id") or _str(item, "merchantReference")
    transaction = {
        "id": transaction_id if isinstance(transaction_id, str) else psp_transaction_id,
        "psp_transaction_id": psp_transaction_id,
        "psp": "adyen",
        "acquirer_country": _acquirer_country(event, context, options.acquirer_country),
        "amount": amount,
        "currency": currency,
        "funding_source": funding,
        "payment_method_id": _payment_method_id(event, context),
        "psp_transaction_created_at": event.occurred_at,
        "scheme": network or "unknown",
        "success": success,
        "outcome": outcome,
        "network_transaction_id": _str(additional, "networkTxReference"),
        "mid": _str(item, "merchantAccountCode"),
        "auth": True,
        "captured": captured,
        "bin": card_bin if card_bin and _BIN.match(card_bin) else None,
        "issuer_country": issuer.upper() if issuer and _COUNTRY.match(issuer) else None,
    }
    # One validation of the whole body (nested models are validated in pydantic-core, which is
    # several times faster than building each model in Python); errors name the field path.
    payment = parse(
        PaymentEvent,
        {
            "customer": {"id": context.customer_id, "psp_id": _psp_customer(event, context)},
            "subscription": {
                "id": context.subscription_id,
                "start_date": context.subscription_start,
            },
            "invoice": {"id": context.invoice_id, "created_at": context.invoice_created_at},
            "transactions": [transaction],
        },
    )
    return RecoverMessage(body=payment, dedupe_key=event.dedupe_key, decline=decline)


def _authorisation(
    event: ProviderEvent, resolve: ContextResolver, options: TranslateOptions
) -> Translation:
    item, additional = event.data, _additional(event.data)
    interaction = _str(additional, "shopperInteraction")
    if options.contauth_only and interaction is not None and interaction != "ContAuth":
        return Translation.ignore(
            event, f"shopperInteraction {interaction}: not a recurring (ContAuth) payment"
        )
    if additional.get("retry.rescueScheduled") == "true":
        logger.warning(
            "adyen %s: Adyen Auto Rescue scheduled its own retry; turn Auto Rescue off for "
            "payments recoverkit manages or both will retry",
            event.dedupe_key,
        )
    context = resolve(event)
    message = _payment_event(
        event,
        context,
        options,
        success=_succeeded(item),
        psp_transaction_id=str(item["pspReference"]),
        captured=None,
    )
    messages = [message]
    status = _str(additional, "realtimeAccountUpdaterStatus")
    if status in _RTAU_REASONS:
        messages.append(
            RecoverMessage(
                body=PaymentMethodUpdate(
                    customer_id=context.customer_id,
                    psp_customer_id=message.body.customer.psp_id,  # type: ignore[union-attr]
                    payment_method_id=message.body.transactions[0].payment_method_id,  # type: ignore[union-attr]
                    reason=_RTAU_REASONS[status],
                ),
                dedupe_key=f"{event.dedupe_key}:account-updater",
            )
        )
    elif status is not None:
        logger.info("adyen %s: realtimeAccountUpdaterStatus %s", event.dedupe_key, status)
    return Translation(event=event, messages=tuple(messages))


def _capture(
    event: ProviderEvent, resolve: ContextResolver, options: TranslateOptions
) -> Translation:
    item = event.data
    if event.type == "CAPTURE" and _succeeded(item):
        return Translation.ignore(
            event, "capture succeeded: the AUTHORISATION item already reported this attempt"
        )
    context = resolve(event)
    message = _payment_event(
        event,
        context,
        options,
        success=False,
        psp_transaction_id=_str(item, "originalReference") or str(item["pspReference"]),
        captured=False,
        fallback_code="event:CAPTURE_FAILED",
    )
    return Translation(event=event, messages=(message,))


def _recurring_contract(event: ProviderEvent, resolve: ContextResolver) -> Translation:
    item = event.data
    if not _succeeded(item):
        return Translation.ignore(event, "RECURRING_CONTRACT failed: no token was stored")
    # The customer comes from signed fields: the rk1 merchantReference's customer part (enough
    # here: a token has no invoice yet), else the billing context (the merchant's hook).
    customer = reference_customer(item)
    context = None
    if customer is None:
        context = resolve(event)
        customer = context.customer_id
    psp_customer = _psp_customer(event, context) if context is not None else customer
    if context is None and shopper_reference(item) not in (None, customer):
        logger.warning(
            "adyen %s: unsigned shopperReference differs from the signed merchantReference's "
            "customer; using the signed one",
            event.dedupe_key,
        )
    update = PaymentMethodUpdate(
        customer_id=customer,
        psp_customer_id=psp_customer,
        payment_method_id=str(item["pspReference"]),  # the token itself
        reason="added",
    )
    return Translation(event=event, messages=(RecoverMessage(update, event.dedupe_key),))


def _token(event: ProviderEvent) -> Translation:
    reason = _TOKEN_REASONS.get(event.type)
    if reason is None:
        return Translation.ignore(event, f"{event.type}: the stored payment method did not change")
    data = event.data.get("data")
    data = data if isinstance(data, Mapping) else {}
    token, shopper = _str(data, "storedPaymentMethodId"), _str(data, "shopperReference")
    if token is None or shopper is None:
        raise _held(event, "tokenization webhook without storedPaymentMethodId/shopperReference")
    update = PaymentMethodUpdate(
        customer_id=shopper, psp_customer_id=shopper, payment_method_id=token, reason=reason
    )
    return Translation(event=event, messages=(RecoverMessage(update, event.dedupe_key),))


def translate_event(
    event: ProviderEvent, resolve: ContextResolver, options: TranslateOptions
) -> Translation:
    """Translate one Adyen event; ``resolve`` supplies (or refuses) the billing context."""
    if event.type == "AUTHORISATION":
        return _authorisation(event, resolve, options)
    if event.type in ("CAPTURE", "CAPTURE_FAILED"):
        return _capture(event, resolve, options)
    if event.type == "RECURRING_CONTRACT":
        return _recurring_contract(event, resolve)
    if event.type.startswith("recurring.token."):
        return _token(event)
    if event.type in ("AUTORESCUE", "CANCEL_AUTORESCUE", "AUTORESCUE_NEXT_ATTEMPT"):
        logger.warning(
            "adyen %s: Auto Rescue is active on this account; turn it off for payments "
            "recoverkit manages",
            event.dedupe_key,
        )
        return Translation.ignore(event, f"{event.type}: Adyen Auto Rescue, not used by Recover")
    return Translation.ignore(event, f"{event.type}: not an event Recover uses")
