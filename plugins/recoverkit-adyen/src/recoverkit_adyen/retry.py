"""Retries through Checkout ``/payments`` and token removal, with the official ``Adyen`` SDK.

A refused payment is HTTP 200 with ``resultCode: "Refused"``: a result, not an exception. HTTP
errors become the core error tree so the worker knows whether repeating is safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

import Adyen
import requests
import urllib3
from Adyen.exceptions import (
    AdyenAPICommunicationError,
    AdyenAPIResponseError,
    AdyenError,
)

from recoverkit.declines import DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.errors import (
    ConfigurationError,
    MissingFactError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
)
from recoverkit.provider import InvoiceRef, RetryAttempt, RetryInstruction
from recoverkit.schema import to_major, to_minor
from recoverkit_adyen.codes import network_name, normalize_refusal
from recoverkit_adyen.context import METADATA_KEYS, format_reference
from recoverkit_adyen.settings import AdyenSettings

__all__ = [
    "build_client",
    "disable_token",
    "execute_retry",
    "idempotency_key_for",
    "payment_request",
    "stored_payment_method_ids",
]

PROVIDER: Final = "adyen"
#: Adyen's limit on ``Idempotency-Key`` (CheckoutService-v72.json, ``/payments`` parameters).
_MAX_IDEMPOTENCY_KEY: Final = 64
_DECLINED: Final = frozenset({"Refused", "Error", "Cancelled"})
_SHOPPER_ACTION: Final = frozenset(
    {"RedirectShopper", "ChallengeShopper", "IdentifyShopper", "PresentToShopper"}
)


def build_client(settings: AdyenSettings) -> Any:
    """An ``Adyen.Adyen`` whose Checkout services point at the pinned version and base URL.

    ``api_checkout_version`` alone does not rewrite a custom endpoint, so every service the
    plugin uses gets its ``baseUrl`` set explicitly.
    """
    if settings.api_key is None or not settings.merchant_account:
        raise ConfigurationError(
            "adyen: RECOVERKIT_ADYEN_API_KEY and RECOVERKIT_ADYEN_MERCHANT_ACCOUNT are needed to "
            "retry payments or disable tokens"
        )
    live = settings.environment == "live" and not settings.checkout_base_url
    adyen = Adyen.Adyen(
        xapikey=settings.api_key.get_secret_value(),
        platform="live" if live else "test",
        live_endpoint_prefix=settings.live_endpoint_prefix,
        http_timeout=settings.http_timeout_seconds,
        api_checkout_version=settings.checkout_api_version,
    )
    adyen.client.http_force = "requests"
    base = settings.checkout_url()
    adyen.checkout.payments_api.baseUrl = base
    adyen.checkout.recurring_api.baseUrl = base
    return adyen


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never established (so no request bytes reached Adyen)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def idempotency_key_for(key: str) -> str:
    # Longer keys are hashed: the same (invoice, attempt) still gives the same key.
    if len(key) <= _MAX_IDEMPOTENCY_KEY:
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


#: Adyen's limit on ``reference`` (Checkout API reference, ``PaymentRequest.reference``).
_MAX_REFERENCE: Final = 80


def retry_reference(invoice: InvoiceRef, attempt: int) -> str:
    """The retry's ``reference``: the signed ``rk1/…/r<attempt>`` convention when the ledger
    holds every fact (so the retry's own AUTHORISATION webhook names its invoice with signed
    fields), else ``<invoice>-r<attempt>`` (that webhook then needs the billing_context hook)."""
    start = invoice.extra.get("subscription_start")
    created = invoice.extra.get("invoice_created_at")
    known = invoice.customer_id and invoice.subscription_id
    if known and isinstance(start, date) and isinstance(created, date):
        try:
            reference = format_reference(
                customer_id=invoice.customer_id or "",
                subscription_id=invoice.subscription_id or "",
                invoice_id=invoice.invoice_id,
                subscription_start=start,
                invoice_created_at=created,
                suffix=f"r{attempt}",
            )
        except ValueError:  # an id with "/" cannot go into the convention
            pass
        else:
            if len(reference) <= _MAX_REFERENCE:
                return reference
    return f"{invoice.invoice_id}-r{attempt}"


def payment_request(instruction: RetryInstruction, settings: AdyenSettings) -> dict[str, Any]:
    """The ``/payments`` body of a merchant-initiated retry on the stored card."""
    invoice = instruction.invoice
    token = instruction.payment_method_id or invoice.payment_method_id
    if not token or not invoice.psp_customer_id:
        raise MissingFactError(
            f"adyen: invoice {invoice.invoice_id} has no stored payment method id or "
            "shopperReference in the ledger; a ContAuth retry needs both",
            provider=PROVIDER,
            object_id=invoice.invoice_id,
        )
    metadata = {METADATA_KEYS["invoice_id"]: invoice.invoice_id}
    if invoice.customer_id:
        metadata[METADATA_KEYS["customer_id"]] = invoice.customer_id
    if invoice.subscription_id:
        metadata[METADATA_KEYS["subscription_id"]] = invoice.subscription_id
    for name in ("subscription_start", "invoice_created_at"):
        value = invoice.extra.get(name)
        if isinstance(value, datetime):
            metadata[METADATA_KEYS[name]] = value.isoformat()
    body: dict[str, Any] = {
        "merchantAccount": settings.merchant_account,
        "reference": retry_reference(invoice, instruction.attempt),
        "merchantOrderReference": invoice.invoice_id,
        "amount": {
            "value": to_minor(instruction.amount, instruction.currency, psp=PROVIDER),
            "currency": instruction.currency.upper(),
        },
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": token},
        "shopperReference": invoice.psp_customer_id,
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": settings.recurring_processing_model,
        "metadata": metadata,
        # Adyen's reference recommends these with merchantOrderReference (AdditionalDataRetry):
        # the attempt's index within the billing cycle (the original charge was 1), and whether
        # Adyen may retry the transaction itself — it must not, recoverkit owns the retries.
        "additionalData": {
            "retry.orderAttemptNumber": str(instruction.attempt + 1),
            "retry.skipRetry": "true" if settings.skip_adyen_retries else "false",
        },
    }
    if settings.return_url:
        body["returnUrl"] = settings.return_url
    return body


def _decline_from_response(message: Mapping[str, Any]) -> NormalizedDecline:
    additional = message.get("additionalData")
    additional = additional if isinstance(additional, Mapping) else {}
    result = str(message.get("resultCode"))
    if result in _SHOPPER_ACTION:
        return NormalizedDecline(
            category=DeclineCategory.AUTHENTICATION_REQUIRED,
            response_type=ResponseType.HARD,
            raw_code=result,
            message=f"resultCode {result}: the shopper must act; an off-session retry cannot",
        )
    code = message.get("refusalReasonCode")
    return normalize_refusal(
        code=str(code) if code is not None else None,
        reason=message.get("refusalReason"),
        raw=additional.get("refusalReasonRaw"),
        inferred=additional.get("inferredRefusalReason"),
        merchant_advice_code=additional.get("merchantAdviceCode"),
        network=network_name(additional.get("paymentMethod")),
    )


def _http_error(exc: AdyenAPIResponseError, instruction: RetryInstruction) -> ProviderError:
    """Map a non-2xx answer to the core tree by whether Adyen may have acted on the request."""
    invoice_id, key = instruction.invoice.invoice_id, instruction.idempotency_key
    status = exc.status_code if isinstance(exc.status_code, int) else 0
    if status >= 500 or status in (0, 408):
        return OutcomeUnknownError(
            f"adyen: /payments answered HTTP {status or '?'} for invoice {invoice_id}; resend "
            f"with idempotency key {key} to learn the outcome",
            provider=PROVIDER,
            object_id=invoice_id,
        )
    if status == 429:
        return RequestNotSentError(
            f"adyen: /payments rate-limited the retry of invoice {invoice_id} (HTTP 429); "
            "nothing was processed, safe to retry later",
            provider=PROVIDER,
            object_id=invoice_id,
        )
    return ProviderError(
        f"adyen: /payments rejected the retry of invoice {invoice_id} with HTTP {status} "
        f"(errorCode {exc.error_code}); nothing was charged — fix the request, the "
        "credentials or the Checkout base URL before retrying",
        provider=PROVIDER,
        object_id=invoice_id,
    )


def execute_retry(
    instruction: RetryInstruction, settings: AdyenSettings, client: Any
) -> RetryAttempt:
    """Charge the stored card once; ``Refused`` is a decline result."""
    body = payment_request(instruction, settings)
    invoice_id = instruction.invoice.invoice_id
    try:
        result = client.checkout.payments_api.payments(
            body, idempotency_key=idempotency_key_for(instruction.idempotency_key)
        )
    except requests.RequestException as exc:
        if _never_sent(exc):
            raise RequestNotSentError(
                f"adyen: could not connect to Checkout for invoice {invoice_id}: {exc}; "
                "nothing was sent, safe to retry",
                provider=PROVIDER,
                object_id=invoice_id,
            ) from exc
        raise OutcomeUnknownError(
            f"adyen: /payments failed in flight for invoice {invoice_id} ({exc}); resend with "
            f"idempotency key {instruction.idempotency_key} to learn the outcome",
            provider=PROVIDER,
            object_id=invoice_id,
        ) from exc
    except AdyenAPIResponseError as exc:
        raise _http_error(exc, instruction) from exc
    message = result.message if isinstance(result.message, Mapping) else {}
    result_code = message.get("resultCode")
    psp_reference = message.get("pspReference") or result.psp
    additional = message.get("additionalData")
    additional = additional if isinstance(additional, Mapping) else {}
    amount = message.get("amount")
    charged, currency = instruction.amount, instruction.currency.upper()
    if isinstance(amount, Mapping) and isinstance(amount.get("value"), int):
        currency = str(amount.get("currency", currency)).upper()
        charged = to_major(amount["value"], currency, psp=PROVIDER)
    if result_code == "Authorised":
        decline, success = None, True
    elif result_code in _DECLINED or result_code in _SHOPPER_ACTION:
        decline, success = _decline_from_response(message), False
    elif result_code == "PartiallyAuthorised":  # never asked for (no allowPartialAuth)
        raise OutcomeUnknownError(
            f"adyen: /payments partially authorised invoice {invoice_id} (pspReference "
            f"{psp_reference}, {charged} {currency}); recoverkit never asks for partial "
            "authorisation: capture or cancel it in the Customer Area",
            provider=PROVIDER,
            object_id=invoice_id,
        )
    else:  # Pending, Received …: the outcome arrives later by webhook
        raise OutcomeUnknownError(
            f"adyen: /payments answered resultCode {result_code!r} for invoice {invoice_id} "
            f"(pspReference {psp_reference}); the outcome arrives in an AUTHORISATION webhook",
            provider=PROVIDER,
            object_id=invoice_id,
        )
    return RetryAttempt(
        success=success,
        psp_transaction_id=psp_reference,
        amount=charged,
        currency=currency,
        payment_method_id=body["paymentMethod"]["storedPaymentMethodId"],
        network_transaction_id=additional.get("networkTxReference"),
        decline=decline,
    )


def stored_payment_method_ids(shopper: str, settings: AdyenSettings, client: Any) -> list[str]:
    """The ids of the shopper's stored payment methods (``GET /storedPaymentMethods``)."""
    try:
        result = client.checkout.recurring_api.get_tokens_for_stored_payment_details(
            query_parameters={
                "shopperReference": shopper,
                "merchantAccount": settings.merchant_account,
            }
        )
    except (AdyenError, requests.RequestException) as exc:
        raise ProviderError(
            f"adyen: could not list the stored payment methods of shopper {shopper}: {exc}",
            provider=PROVIDER,
            object_id=shopper,
        ) from exc
    message = result.message if isinstance(result.message, Mapping) else {}
    methods = message.get("storedPaymentMethods") or []
    return [str(m["id"]) for m in methods if isinstance(m, Mapping) and m.get("id")]


def disable_token(invoice: InvoiceRef, settings: AdyenSettings, client: Any) -> bool:
    """Delete the invoice's stored payment method; False when Adyen no longer has it.

    The shopper's stored methods are listed first, so a second call is a no-op that sends no
    DELETE (idempotent without relying on the error Adyen gives for a deleted token).
    """
    token, shopper = invoice.payment_method_id, invoice.psp_customer_id
    if not token or not shopper:
        raise MissingFactError(
            f"adyen: invoice {invoice.invoice_id} has no stored payment method id or "
            "shopperReference in the ledger; cannot disable the token",
            provider=PROVIDER,
            object_id=invoice.invoice_id,
        )
    if token not in stored_payment_method_ids(shopper, settings, client):
        return False
    try:
        client.checkout.recurring_api.delete_token_for_stored_payment_details(
            token,
            query_parameters={
                "shopperReference": shopper,
                "merchantAccount": settings.merchant_account,
            },
        )
    except AdyenAPICommunicationError as exc:
        if exc.status_code == 404:  # deleted between the listing and now
            return False
        raise OutcomeUnknownError(
            f"adyen: disabling stored payment method {token} answered HTTP {exc.status_code}; "
            "list the shopper's stored payment methods to see whether it is gone",
            provider=PROVIDER,
            object_id=token,
        ) from exc
    except (AdyenError, requests.RequestException) as exc:
        raise ProviderError(
            f"adyen: could not disable stored payment method {token} of invoice "
            f"{invoice.invoice_id}: {exc}",
            provider=PROVIDER,
            object_id=token,
        ) from exc
    return True
