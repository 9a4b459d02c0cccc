"""The :class:`Provider` base class and the value objects that cross its boundary.

A PSP plugin subclasses :class:`Provider` once and registers it through the
``register_providers`` hook. The service, the CLI and the sandbox only talk to PSPs through it.
Every method is synchronous; the service calls them from worker threads.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar, cast

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recoverkit.declines import NormalizedDecline
from recoverkit.errors import MalformedWebhookError, UnsupportedCapabilityError
from recoverkit.facts import FactSource
from recoverkit.schema import (
    EndOfDunning,
    PaymentEvent,
    PaymentMethodUpdate,
    RetryResults,
    RetryStatusResponse,
    dumps,
)
from recoverkit.schema.money import register_exponents

__all__ = [
    "BillingContext",
    "Capability",
    "DoctorCheck",
    "EndOfDunningPolicy",
    "InvoiceRef",
    "Provider",
    "ProviderEvent",
    "ProviderSettings",
    "RecoverMessage",
    "RetryAttempt",
    "RetryInstruction",
    "Translation",
    "WebhookRequest",
    "decode_json",
]


class Capability(StrEnum):
    """What a provider implements beyond receiving webhooks."""

    WEBHOOKS = "webhooks"  # verify, parse, translate
    RETRY_STATUS = "retry_status"
    EXECUTE_RETRY = "execute_retry"
    RECONCILE = "reconcile"
    END_DUNNING = "end_dunning"
    BACKFILL = "backfill"
    SIGN_TEST_WEBHOOK = "sign_test_webhook"


class EndOfDunningPolicy(StrEnum):
    """What ``end_dunning`` does at the PSP when Recover gives up on an invoice."""

    NONE = "none"
    MARK_UNCOLLECTIBLE = "mark_uncollectible"
    VOID = "void"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    DISABLE_TOKEN = "disable_token"  # noqa: S105 - a policy name, not a secret


class _Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping (first value wins on duplicates)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        store: dict[str, str] = {}
        for name, value in pairs:
            store.setdefault(name.lower(), value)
        self._items = store

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)})"


#: The deepest JSON nesting :func:`decode_json` accepts. PSP webhooks nest well under 20 levels;
#: an unsigned field (Adyen's ``additionalData``) could otherwise carry any depth.
MAX_JSON_DEPTH = 64


def decode_json(body: bytes | str, *, provider: str = "", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A webhook body as JSON, or :class:`MalformedWebhookError` naming the problem.

    Bytes must be UTF-8. Nesting deeper than ``max_depth`` is refused whether or not it would
    break the interpreter's recursion limit, so nothing downstream (a recursive walk, a
    serializer, a worker thread's smaller stack) meets it. ``provider`` prefixes the message.
    """
    prefix = f"{provider}: " if provider else ""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedWebhookError(
                f"{prefix}body is not UTF-8 (byte {exc.start}); webhooks are UTF-8 JSON"
            ) from None
    try:
        value = json.loads(body)
    except RecursionError:
        deep = True
    except ValueError as exc:
        raise MalformedWebhookError(f"{prefix}body is not valid JSON: {exc}") from None
    else:
        # Counting brackets runs at C speed and bounds the depth, so most bodies skip the walk.
        deep = (
            isinstance(value, dict | list)
            and body.count("[") + body.count("{") > max_depth
            and _deeper_than(value, max_depth)
        )
    if deep:
        raise MalformedWebhookError(f"{prefix}body nests deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A PSP webhook exactly as received: raw body bytes and headers (case-insensitive)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not isinstance(self.headers, _Headers):
            object.__setattr__(self, "headers", _Headers(self.headers))

    def header(self, name: str) -> str | None:
        """The header's value, or None when absent."""
        return self.headers.get(name)

    def json(self, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
        """The body parsed as JSON, or :class:`MalformedWebhookError` naming the problem.

        See :func:`decode_json`: bad UTF-8, bad JSON and nesting deeper than ``max_depth`` are
        all malformed input, never ``UnicodeDecodeError`` or ``RecursionError``.
        """
        return decode_json(self.body, max_depth=max_depth)

    def __repr__(self) -> str:  # never print a body: it may hold personal data
        return f"WebhookRequest({len(self.body)} bytes, headers={sorted(self.headers)})"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One PSP event decoded from a webhook, before translation.

    ``data`` is what the provider needs to translate it later, without the request: the raw
    event (Stripe's whole event, with ``created`` and ``previous_attributes``) or the object.
    """

    provider: str
    dedupe_key: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]
    object_id: str | None = None

    def __repr__(self) -> str:
        return f"ProviderEvent({self.provider}:{self.type} {self.dedupe_key})"


@dataclass(frozen=True, slots=True)
class RecoverMessage:
    """A message for Recover, produced by ``translate``."""

    body: PaymentEvent | PaymentMethodUpdate
    dedupe_key: str
    decline: NormalizedDecline | None = None

    @property
    def endpoint(self) -> Literal["payments", "payment_method_updates"]:
        """Which Recover endpoint takes this body."""
        return self.body.endpoint

    def to_json(self) -> str:
        """The one-line JSON that ``recoverkit translate`` prints."""
        # Assembled from parts: the body through pydantic's serializer, the rest plain JSON
        # (this sits on the webhook hot path; a generic encoder costs five times as much).
        decline = json.dumps(self.decline.to_dict()) if self.decline else "null"
        return (
            f'{{"endpoint":"{self.endpoint}","body":{dumps(self.body)},'
            f'"decline":{decline},"dedupe_key":{json.dumps(self.dedupe_key)}}}'
        )


@dataclass(frozen=True, slots=True)
class Translation:
    """What one event became: messages for Recover, or a reason it was ignored."""

    event: ProviderEvent
    messages: tuple[RecoverMessage, ...] = ()
    ignored: str | None = None

    @classmethod
    def ignore(cls, event: ProviderEvent, reason: str) -> Translation:
        """The event carries nothing for Recover (irrelevant type, or another event carries it)."""
        return cls(event=event, ignored=reason)

    def to_json_lines(self) -> list[str]:
        """One JSON line per message, or one ``{"ignored": …, "reason": …}`` line."""
        if self.ignored is not None:
            return [json.dumps({"ignored": self.event.type, "reason": self.ignored})]
        return [message.to_json() for message in self.messages]


@dataclass(frozen=True, slots=True)
class InvoiceRef:
    """An invoice from recoverkit's ledger: Recover's ids joined to the PSP's ids."""

    provider: str
    invoice_id: str
    customer_id: str | None = None
    subscription_id: str | None = None
    psp_invoice_id: str | None = None
    psp_subscription_id: str | None = None
    psp_customer_id: str | None = None
    psp_transaction_id: str | None = None
    payment_method_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetryInstruction:
    """A retry to execute through the PSP. ``idempotency_key`` derives from (invoice, attempt)."""

    invoice: InvoiceRef
    attempt: int
    idempotency_key: str
    amount: Decimal
    currency: str
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """The outcome of one retry: a decline is a result with ``success=False``, not an exception."""

    success: bool
    psp_transaction_id: str | None
    amount: Decimal
    currency: str
    payment_method_id: str | None = None
    network_transaction_id: str | None = None
    decline: NormalizedDecline | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BillingContext:
    """Facts a PSP does not hold (Adyen has no subscriptions), supplied by the merchant."""

    customer_id: str
    subscription_id: str
    invoice_id: str
    subscription_start: datetime
    invoice_created_at: datetime
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    """One line of ``recoverkit doctor``: what was checked, whether it passed, what to do."""

    name: str
    ok: bool
    detail: str = ""


class ProviderSettings(BaseSettings):
    """Base of each provider's settings; a subclass sets ``env_prefix="RECOVERKIT_<NAME>_"``.

    Secrets are ``SecretStr`` so they never appear in ``repr`` or logs.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    #: Largest webhook body ``verify`` and ``parse`` accept, in bytes; a larger one is refused
    #: before any parsing (the service's ``max_body_bytes`` default, so the CLI and embedded
    #: use are bounded like the service).
    max_body_bytes: int = Field(default=1_048_576, ge=1)


_DEFAULT_MAX_BODY_BYTES = 1_048_576
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _refusing_oversize(method: _Method) -> _Method:
    @functools.wraps(method)
    def checked(self: Provider, request: WebhookRequest, *args: Any, **kwargs: Any) -> Any:
        self.check_body_size(request)
        return method(self, request, *args, **kwargs)

    checked._checks_body_size = True  # type: ignore[attr-defined]
    return cast(_Method, checked)


class Provider:
    """Base class of a PSP adapter (one subclass per PSP).

    Subclasses set ``name`` (the ``{provider}`` in ``/webhooks/{provider}``),
    ``capabilities`` and ``settings_class``, and implement what their capabilities declare.
    ``verify``, ``parse`` and ``translate`` are always required.
    """

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.WEBHOOKS})
    settings_class: ClassVar[type[ProviderSettings]] = ProviderSettings
    #: What the receiver answers a PSP after a webhook is stored: (status, content type, body).
    webhook_ack: ClassVar[tuple[int, str, bytes]] = (200, "application/json", b'{"received":true}')
    #: Currencies whose exponent in this PSP's API differs from ISO 4217 (``{"ISK": 2}``);
    #: registered under ``name`` when the class is defined, used by ``to_major(..., psp=name)``.
    currency_exponents: ClassVar[Mapping[str, int]] = {}

    #: Where ``translate`` gets billing facts the PSP does not hold (Adyen's subscriptions, a
    #: Stripe charge outside an invoice). :meth:`Plugins.create_provider` points it at the
    #: ``billing_context`` hook when a plugin implements it; a provider may set its own.
    billing_context: Callable[[ProviderEvent], BillingContext | None] | None = None

    #: When set, ``translate`` serves the API objects a webhook lacks from here and never calls
    #: the PSP (``recoverkit translate --offline`` / ``--facts FILE``); a lookup it does not hold
    #: raises :class:`recoverkit.facts.FactNotAvailable`. See :mod:`recoverkit.facts`.
    facts_source: FactSource | None = None

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        self.settings = settings if settings is not None else self.settings_class()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every plugin's verify and parse refuse an oversize body before reading it: the check
        # lives here, once, so no plugin can forget it (the service has its own limit; the CLI
        # and embedded use have only this one).
        super().__init_subclass__(**kwargs)
        if "currency_exponents" in cls.__dict__:  # declared here, not inherited: register it
            cls.currency_exponents = register_exponents(cls.name, cls.currency_exponents)
        for name in ("verify", "parse"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_checks_body_size", False):
                setattr(cls, name, _refusing_oversize(method))

    def check_body_size(self, request: WebhookRequest) -> None:
        """Raise :class:`MalformedWebhookError` when the body exceeds ``max_body_bytes``.

        ``verify`` and ``parse`` call it before anything else, in every subclass.
        """
        limit = getattr(self.settings, "max_body_bytes", None) or _DEFAULT_MAX_BODY_BYTES
        if len(request.body) > limit:
            prefix = self.settings.model_config.get("env_prefix") or "RECOVERKIT_<PROVIDER>_"
            raise MalformedWebhookError(
                f"{getattr(self, 'name', '?')}: the webhook body is {len(request.body)} bytes, "
                f"over the {limit}-byte limit (setting max_body_bytes, {prefix}MAX_BODY_BYTES); "
                "refused before parsing"
            )

    @classmethod
    def from_overrides(cls, **overrides: Any) -> Provider:
        """Build with settings from the environment, overridden by keyword arguments."""
        return cls(cls.settings_class(**overrides))

    @classmethod
    def for_demo(cls) -> Provider:
        """A provider that works offline with its bundled samples (``recoverkit demo``).

        The default reads settings from the environment; plugins override it to use their
        documented test secret and the API responses bundled with the samples.
        """
        return cls()

    @classmethod
    def with_webhook_secret(cls, secret: str, **overrides: Any) -> Provider:
        """Build with ``secret`` as the only webhook secret (``recoverkit translate --secret``).

        The default sets the ``webhook_secrets`` setting; a provider whose secret has another
        shape (a key pair) overrides this.
        """
        return cls.from_overrides(webhook_secrets=[secret], **overrides)

    def supports(self, capability: Capability) -> bool:
        """True when the provider declares ``capability``."""
        return capability in self.capabilities

    def _unsupported(self, capability: Capability) -> UnsupportedCapabilityError:
        return UnsupportedCapabilityError(f"provider {self.name!r} does not support {capability}")

    # -- inbound -------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Raise :class:`~recoverkit.errors.SignatureError` unless the request is authentic."""
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        """Decode a verified request into events, without network calls."""
        raise NotImplementedError

    def translate(self, event: ProviderEvent) -> Translation:
        """Turn one event into Recover messages (or a reason to ignore it)."""
        raise NotImplementedError

    def sample_webhooks(self) -> list[WebhookRequest]:
        """Signed sample requests bundled with the plugin (the demo translates these)."""
        return []

    def sample_facts(self) -> dict[str, Any]:
        """The API objects the samples refer to, in :class:`recoverkit.facts.FactsFile`'s format
        (``recoverkit samples`` writes them for ``translate --facts``); empty when none needed."""
        return {}

    # -- outbound ------------------------------------------------------------------------------

    def retry_status(self, invoice: InvoiceRef) -> RetryStatusResponse:
        """Is the invoice still open and collectable at the PSP?"""
        raise self._unsupported(Capability.RETRY_STATUS)

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        """Charge through the PSP with the instruction's idempotency key."""
        raise self._unsupported(Capability.EXECUTE_RETRY)

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        """Write a Retry Results outcome back into the PSP; idempotent."""
        raise self._unsupported(Capability.RECONCILE)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        """Apply the configured end-of-dunning action at the PSP; idempotent."""
        raise self._unsupported(Capability.END_DUNNING)

    def backfill(
        self, since: datetime, until: datetime, cursor: str | None = None
    ) -> Iterator[tuple[ProviderEvent, str]]:
        """History (successes and failures), oldest first, each with a cursor to resume after."""
        raise self._unsupported(Capability.BACKFILL)

    def sign_test_webhook(
        self, body: bytes, *, timestamp: datetime | None = None
    ) -> WebhookRequest:
        """A correctly signed request carrying ``body``, for tests, replay and the demo."""
        raise self._unsupported(Capability.SIGN_TEST_WEBHOOK)

    def doctor(self) -> list[DoctorCheck]:
        """Checks for ``recoverkit doctor``: webhook subscriptions, the PSP's own retries off …"""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '?')}>"
