"""Recover's wire messages as strict pydantic models (names exactly as on the wire).

Field tables and sources: ``research/butter-recover-api.md``; decisions where Butter's documents
disagree: ``docs/RECOVER_API.md``. Models here are strict: an unknown field is an error, so a
typo never silently drops data. Amounts are ``Decimal`` major units; see :mod:`.money`.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PositiveInt,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from recoverkit.schema.money import wire_amount
from recoverkit.schema.types import Amount, CurrencyCode, Timestamp

__all__ = [
    "BUTTER_PSP_NAMES",
    "Billing",
    "BillingAddress",
    "BillingPeriod",
    "Customer",
    "EndOfDunning",
    "EnhancedData",
    "FundingSource",
    "Invoice",
    "Outcome",
    "PaymentEvent",
    "PaymentMethodUpdate",
    "PspTransaction",
    "RecoverAccepted",
    "RecoverError",
    "ResponseType",
    "RetryPaymentMethod",
    "RetryResults",
    "RetryStatusRequest",
    "RetryStatusResponse",
    "RetryToken",
    "Subscription",
    "Transaction",
    "WebhookAck",
]

#: The ``transactions[].psp`` values on Butter's list. A plugin for another PSP sends its own name,
#: admitted by the ``extra_psp_names`` setting (passed as validation context).
BUTTER_PSP_NAMES: Final = frozenset(
    {"stripe", "braintree", "worldpay", "recharge", "recurly", "adyen"}
)


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are errors, no coercion of strings to numbers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


class _TopLevel(WireModel):
    """A message that is a whole request or webhook body: refuses the ``{"body": …}`` wrapper
    with a reason (nested objects need no such check, which keeps validation fast)."""

    @model_validator(mode="before")
    @classmethod
    def _reject_body_wrapper(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1 and "body" in data:
            raise ValueError(
                'the {"body": …} wrapper seen in generated samples is not part of the wire format'
            )
        return data


class _AnyCase(StrEnum):
    """An enum whose wire spelling has one case but accepts any: the exact spelling validates in
    pydantic-core, only another case reaches Python (``_missing_``)."""

    @classmethod
    def _missing_(cls, value: object) -> _AnyCase | None:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None


class FundingSource(_AnyCase):
    """``transactions[].funding_source``: upper case on the wire; any case accepted."""

    CREDIT = "CREDIT"
    DEBIT = "DEBIT"
    MIXED = "MIXED"
    PAYPAL = "PAYPAL"
    PREPAID = "PREPAID"
    UNCATEGORIZED = "UNCATEGORIZED"
    UNKNOWN = "UNKNOWN"


class BillingPeriod(_AnyCase):
    """``subscription.billing.period``: any case accepted; sent lower case."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class ResponseType(StrEnum):
    """``outcome.response_type`` (absent on success)."""

    SOFT_DECLINE = "soft_decline"
    HARD_DECLINE = "hard_decline"


class Customer(WireModel):
    """``customer``: the merchant's customer."""

    id: str = Field(min_length=1)
    psp_id: str | None = None
    created_at: Timestamp | None = None
    postal_code: str | None = None


class Billing(WireModel):
    """``subscription.billing``."""

    period: BillingPeriod | None = None
    frequency: PositiveInt | None = None


class Subscription(WireModel):
    """``subscription``."""

    id: str = Field(min_length=1)
    start_date: Timestamp
    end_date: Timestamp | None = None
    discounted_or_free_period: bool | None = None
    product_id: str | None = None
    billing: Billing | None = None


class Invoice(WireModel):
    """``invoice``: its ``id`` is the ``{invoice_id}`` of RetryStatus and the webhooks."""

    id: str = Field(min_length=1)
    created_at: Timestamp


class Outcome(WireModel):
    """``transactions[].outcome``: the issuer's or processor's answer."""

    raw_response_message: str
    psp_response_message: str | None = None
    processor_response_code: int | None = None
    network_status: str | None = None
    response_type: ResponseType | None = None


class EnhancedData(WireModel):
    """``transactions[].enhanced_data``: Level 2/3 data; Butter documents no inner schema."""

    level_2: dict[str, Any] | None = None
    level_3: dict[str, Any] | None = None


class Transaction(WireModel):
    """``transactions[]``: one payment attempt."""

    id: str = Field(min_length=1)
    psp_transaction_id: str = Field(min_length=1)
    psp: str = Field(min_length=1)
    acquirer_country: str = Field(min_length=2, max_length=2)
    amount: Amount
    currency: CurrencyCode
    funding_source: FundingSource
    payment_method_id: str = Field(min_length=1)
    psp_transaction_created_at: Timestamp
    scheme: str = Field(min_length=1)
    success: bool
    outcome: Outcome
    network_transaction_id: str | None = None
    mid: str | None = None
    reporting_group: str | None = None
    billing_postal_code: str | None = None
    auth: bool | None = None
    bin: str | None = Field(default=None, pattern=r"^[0-9]{6,8}$")
    captured: bool | None = None
    issuer_country: str | None = Field(default=None, min_length=2, max_length=2)
    refunded: bool | None = None
    enhanced_data: EnhancedData | None = None

    @field_validator("psp")
    @classmethod
    def _known_psp(cls, value: str, info: ValidationInfo) -> str:
        extra = (info.context or {}).get("extra_psp_names", ())
        if value not in BUTTER_PSP_NAMES and value not in extra:
            allowed = ", ".join(sorted(BUTTER_PSP_NAMES))
            raise ValueError(
                f"{value!r} is not on Recover's PSP list ({allowed}); "
                "add it to the extra_psp_names setting if your Recover account accepts it"
            )
        return value

    @field_serializer("amount")
    def _amount_text(self, amount: Decimal) -> Decimal:
        return wire_amount(amount, self.currency)

    @model_validator(mode="after")
    def _decline_fields(self) -> Transaction:
        if self.success and self.outcome.response_type is not None:
            raise ValueError("outcome.response_type is only sent for a declined transaction")
        return self


class PaymentEvent(_TopLevel):
    """``POST {base}/payments``: one invoice attempt cycle with its transactions."""

    endpoint: ClassVar[Literal["payments"]] = "payments"

    customer: Customer
    subscription: Subscription
    invoice: Invoice
    transactions: list[Transaction] = Field(min_length=1)
    custom: dict[str, Any] | None = None


class PaymentMethodUpdate(_TopLevel):
    """``POST {base}/payment_method_updates``: a payment method added, updated or removed."""

    endpoint: ClassVar[Literal["payment_method_updates"]] = "payment_method_updates"

    customer_id: str = Field(min_length=1)
    psp_customer_id: str | None = None
    payment_method_id: str = Field(min_length=1)
    reason: str | None = None


class RecoverAccepted(_TopLevel):
    """Recover's 200 answer to Payments and Payment Method Updates."""

    message: str
    request_id: str


class RecoverError(_TopLevel):
    """Recover's 400/403/415 (``errors`` set) and 404 answers; ``errors``' shape is undocumented."""

    message: str
    errors: Any = None


class RetryStatusRequest(BaseModel):
    """Body of ``POST /retry/{invoice_id}``: optional ``custom`` filters.

    Lenient on purpose: Butter's docs leave open whether filters come as ``{"custom": {…}}`` or
    as top-level keys, so top-level keys are kept (``model_extra``) rather than refused.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    custom: dict[str, Any] | None = None


def _reveal(value: SecretStr) -> str:
    return value.get_secret_value()


#: A credential: hidden from ``repr`` and logs, sent in clear only when writing the wire JSON.
WireSecret = Annotated[SecretStr, PlainSerializer(_reveal, return_type=str, when_used="json")]


class RetryToken(WireModel):
    """``payment_methods[].token``: card credentials; secret values never appear in ``repr``."""

    id: WireSecret | None = None
    expiration_month: str | None = None
    expiration_year: str | None = None
    card_validation_number: WireSecret | None = None


class BillingAddress(WireModel):
    """``payment_methods[].billing_address``."""

    name: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    phone: str | None = None


class RetryPaymentMethod(WireModel):
    """``payment_methods[]``: a payment method Recover may use for the retry."""

    id: str = Field(min_length=1)
    network_transaction_id: str | None = None
    bin: str | None = None
    token: RetryToken | None = None
    billing_address: BillingAddress | None = None


class RetryStatusResponse(_TopLevel):
    """The merchant's 200 answer to RetryStatus: may Recover retry, and for how much."""

    retry: bool
    reason: str | None = None
    amount: Amount | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    payment_methods: list[RetryPaymentMethod] = Field(default_factory=list)

    @field_serializer("amount")
    def _amount_text(self, amount: Decimal | None) -> Decimal | None:
        return None if amount is None else wire_amount(amount)


class PspTransaction(WireModel):
    """``psp_transactions[]`` of Retry Results: one PSP transaction Recover made."""

    psp_transaction_id: str
    network_transaction_id: str | None = None
    merchant_payment_method_id: str | None = None
    success: bool


class RetryResults(_TopLevel):
    """The Retry Results webhook: the outcome of one retry attempt."""

    timestamp: Timestamp
    butter_id: str
    customer_id: str | None = None
    subscription_id: str | None = None
    invoice_id: str = Field(min_length=1)
    transaction_id: str | None = None
    original_psp_transaction_id: str | None = None
    psp_transactions: list[PspTransaction] = Field(default_factory=list)
    original_amount: Amount | None = None
    amount_collected: Amount | None = None
    currency: CurrencyCode | None = None
    success: bool
    dunning_complete: bool | None = None
    custom: dict[str, Any] | None = None

    @field_serializer("original_amount", "amount_collected")
    def _amount_text(self, amount: Decimal | None) -> Decimal | None:
        return None if amount is None else wire_amount(amount, self.currency)

    @model_validator(mode="after")
    def _amounts_need_currency(self) -> RetryResults:
        has_amount = self.original_amount is not None or self.amount_collected is not None
        if has_amount and self.currency is None:
            raise ValueError("currency is required when an amount is given")
        return self


class EndOfDunning(_TopLevel):
    """The End of Dunning webhook: Recover makes no further attempts on this invoice."""

    timestamp: Timestamp
    invoice_id: str = Field(min_length=1)
    recovered: bool
    custom: dict[str, Any] | None = None


class WebhookAck(_TopLevel):
    """The merchant's answer to a Recover webhook."""

    detail: str = "Event delivered successfully"
