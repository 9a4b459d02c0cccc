"""The ``braintree`` provider: the :class:`~recoverkit.provider.Provider` subclass.

Inbound: ``verify``/``parse`` through the SDK's ``webhook_notification.parse`` with every
configured key pair, ``translate`` with facts from cached ``transaction.find`` /
``subscription.find``. Outbound: :mod:`.retry`, :mod:`.reconcile`, :mod:`.backfill`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cached_property
from importlib.resources import files
from typing import Any, ClassVar

from braintree.util.xml_util import XmlUtil
from pydantic import SecretStr

from recoverkit.errors import ConfigurationError, MalformedWebhookError, RecoverkitError
from recoverkit.provider import (
    Capability,
    DoctorCheck,
    EndOfDunningPolicy,
    InvoiceRef,
    Provider,
    ProviderEvent,
    RetryAttempt,
    RetryInstruction,
    Translation,
    WebhookRequest,
)
from recoverkit.schema import EndOfDunning, RetryResults, RetryStatusResponse
from recoverkit_braintree import backfill as _backfill
from recoverkit_braintree import reconcile as _reconcile
from recoverkit_braintree import retry as _retry
from recoverkit_braintree import webhooks
from recoverkit_braintree.account_updater import download_report, parse_report
from recoverkit_braintree.claims import ClaimStore, open_claims
from recoverkit_braintree.codes import SUCCESS_STATUSES
from recoverkit_braintree.gateway import CachedLookups, build_gateway
from recoverkit_braintree.settings import BraintreeSettings, KeyPair
from recoverkit_braintree.translate import (
    cycle_of,
    payment_event_message,
    payment_method_update,
    utc,
)

__all__ = ["SAMPLE_KINDS", "TEST_KEY_PAIR", "BraintreeProvider"]

#: The documented key pair ``sample_webhooks`` signs with when none is configured.
TEST_KEY_PAIR = KeyPair(public_key="recoverkit_test_public", private_key="recoverkit_test_private")
#: Bundled sample notifications (``samples/<kind>.xml``), in demo order.
SAMPLE_KINDS = (
    "subscription_charged_unsuccessfully",
    "subscription_charged_successfully",
    "payment_method_revoked_by_customer",
)
_NOTIFICATION_CACHE = 32  # verify → parse → translate needs only the last few


class BraintreeProvider(Provider):
    """Braintree: webhooks, retry status, retries, end of dunning, backfill."""

    name: ClassVar[str] = "braintree"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    settings_class: ClassVar[type[BraintreeSettings]] = BraintreeSettings
    webhook_ack: ClassVar[tuple[int, str, bytes]] = (200, "text/plain", b"OK")

    settings: BraintreeSettings

    def __init__(
        self,
        settings: BraintreeSettings | None = None,
        *,
        claims: ClaimStore | None = None,
        report_client: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(settings)
        self._claims = claims
        self._report_client = report_client
        self._notifications: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_demo(cls) -> BraintreeProvider:
        """Offline: the documented test key pair, and the API answers bundled with the samples.

        ``transaction.find`` / ``subscription.find`` for the sample ids are served from
        ``samples/api/*.xml`` (hand-written from Braintree's XML reference), so no call leaves
        the machine.
        """
        settings = cls.settings_class(
            merchant_id="recoverkit_demo",
            key_pairs=[TEST_KEY_PAIR],
            api_base_url="http://127.0.0.1:9",  # a closed port: a cache miss fails fast
            lookup_cache_seconds=10**9,
        )
        provider = cls(settings)
        folder = files("recoverkit_braintree") / "samples" / "api"
        for item in folder.iterdir():
            if item.name.endswith(".xml"):
                provider.lookups.remember(XmlUtil.dict_from_xml(item.read_bytes()))
        return provider

    @classmethod
    def with_webhook_secret(cls, secret: str, **overrides: Any) -> BraintreeProvider:
        """Build with one key pair given as ``"<public_key>:<private_key>"``."""
        public_key, sep, private_key = secret.partition(":")
        if not sep or not public_key or not private_key:
            raise ConfigurationError(
                "braintree: give the webhook secret as <public_key>:<private_key>"
            )
        pair = KeyPair(public_key=public_key, private_key=SecretStr(private_key))
        settings = cls.settings_class(**{**overrides, "key_pairs": [pair]})
        if not settings.merchant_id:
            # Verifying needs no merchant id, but the SDK refuses an empty one; API calls (facts
            # for subscription kinds) then fail with an authentication error naming the object.
            settings = settings.model_copy(update={"merchant_id": "unset"})
        return cls(settings)

    # -- SDK plumbing ---------------------------------------------------------------------------

    @cached_property
    def _gateways(self) -> list[tuple[str, Any]]:
        return [(p.public_key, build_gateway(self.settings, p)) for p in self.settings.key_pairs]

    @property
    def gateway(self) -> Any:
        """The SDK gateway for API calls (the first configured key pair)."""
        if not self._gateways:
            raise ConfigurationError(
                "braintree: no key pair configured (RECOVERKIT_BRAINTREE_KEY_PAIRS)"
            )
        return self._gateways[0][1]

    @cached_property
    def lookups(self) -> CachedLookups:
        """Cached ``transaction.find`` / ``subscription.find`` used by ``translate``; served
        from ``facts_source`` instead when one is set (``translate --offline`` / ``--facts``)."""
        if self.facts_source is not None:
            from recoverkit_braintree.facts import SourceLookups

            return SourceLookups(self.facts_source)
        return CachedLookups(self.gateway, self.settings.lookup_cache_seconds)

    @cached_property
    def claims(self) -> ClaimStore:
        """Per-subscription retry claims (``claims_path`` SQLite file, or memory)."""
        return self._claims if self._claims is not None else open_claims(self.settings.claims_path)

    def _remember(self, key: str, notification: Any) -> None:
        with self._lock:
            self._notifications[key] = notification
            self._notifications.move_to_end(key)
            while len(self._notifications) > _NOTIFICATION_CACHE:
                self._notifications.popitem(last=False)

    def _recall(self, key: str) -> Any:
        with self._lock:
            return self._notifications.get(key)

    # -- inbound ------------------------------------------------------------------------------

    def _verified(self, request: WebhookRequest) -> tuple[str, str, Any]:
        """(bt_payload text, dedupe key, SDK notification) for an authentic request.

        Results are cached by a hash of the whole raw body (signature included), so ``parse``
        right after ``verify`` costs nothing and a known payload with another signature is
        verified again.
        """
        body_key = "body:" + hashlib.sha256(request.body).hexdigest()
        cached = self._recall(body_key)
        if cached is not None:
            payload_text, key, notification = cached
            return str(payload_text), str(key), notification
        form = webhooks.read_form(request.body, max_bytes=self.settings.max_body_bytes)
        if not self._gateways:
            raise ConfigurationError(
                "braintree: no key pair configured (RECOVERKIT_BRAINTREE_KEY_PAIRS)"
            )
        notification = webhooks.verify_with_sdk(form, self._gateways)
        webhooks.check_fresh(
            utc(notification.timestamp) or datetime.min.replace(tzinfo=UTC),
            request.received_at,
            self.settings.webhook_tolerance,
            self.settings.webhook_max_clock_skew,
        )
        key = webhooks.dedupe_key(form.payload)
        payload_text = form.payload.decode("ascii")
        self._remember(body_key, (payload_text, key, notification))
        self._remember(key, notification)
        return payload_text, key, notification

    def verify(self, request: WebhookRequest) -> None:
        """Raise ``SignatureError`` unless a configured key pair signed the payload."""
        self._verified(request)

    def _unverified(self, request: WebhookRequest) -> tuple[str, str, Any]:
        """(bt_payload text, dedupe key, notification) without a signature check.

        For ``parse`` of a request ``verify`` never saw (``recoverkit translate --no-verify``):
        the form body or a bare ``<notification>`` XML document. Nothing is cached under the
        body's hash, so a later ``verify`` of the same body still checks its signature.
        """
        payload, xml = webhooks.unverified_notification_xml(
            request.body, max_bytes=self.settings.max_body_bytes
        )
        attributes = webhooks.notification_attributes(xml)
        notification = webhooks.build_notification(self._gateway_or_none(), attributes)
        return payload.decode("ascii"), webhooks.dedupe_key(payload), notification

    def _gateway_or_none(self) -> Any:
        """The API gateway when one can be built; decoding a notification needs none."""
        try:
            return self.gateway
        except ConfigurationError:
            return None

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        """One event per webhook; the dedupe key is a hash of ``bt_payload``.

        A request ``verify`` accepted is read from its cache; any other is decoded without a
        signature check (the service always verifies first), and may then also be a bare
        ``<notification>`` XML document like the bundled samples.
        """
        cached = self._recall("body:" + hashlib.sha256(request.body).hexdigest())
        if cached is not None:
            payload_text, key, notification = str(cached[0]), str(cached[1]), cached[2]
        else:
            payload_text, key, notification = self._unverified(request)
            self._remember(key, notification)
        return [
            ProviderEvent(
                provider=self.name,
                dedupe_key=key,
                type=str(notification.kind),
                occurred_at=utc(notification.timestamp) or request.received_at,
                data={
                    "kind": str(notification.kind),
                    "bt_payload": payload_text,
                },
                object_id=_subject_id(notification),
            )
        ]

    def _notification(self, event: ProviderEvent) -> Any:
        cached = self._recall(event.dedupe_key)
        if cached is not None:
            return cached
        payload = str(event.data.get("bt_payload", "")).encode("ascii")
        if not payload:
            raise MalformedWebhookError("braintree: event data lacks bt_payload")
        # The payload was verified when it was received; decode it again (DTD still refused).
        attributes = webhooks.notification_attributes(webhooks.decode_notification_xml(payload))
        notification = webhooks.build_notification(self._gateway_or_none(), attributes)
        self._remember(event.dedupe_key, notification)
        return notification

    def translate(self, event: ProviderEvent) -> Translation:
        """Payments events for charges, Payment Method Updates for card changes."""
        if event.type == _backfill.BACKFILL_TYPE:
            txn = self.lookups.transaction(str(event.data["transaction_id"]))
            return self._payment(event, txn, f"braintree:attempt:{txn.id}")
        notification = self._notification(event)
        kind = str(notification.kind)
        handler = _HANDLERS.get(kind)
        if handler is None:
            return Translation.ignore(event, f"Braintree {kind} carries nothing for Recover")
        try:
            return handler(self, event, notification)
        except RecoverkitError:
            raise
        except (AttributeError, TypeError, KeyError, ValueError, ArithmeticError) as exc:
            # A notification whose subject lacks what its kind always carries (an id, a
            # transaction list of the right shape) is bad input, not a bug to report.
            raise MalformedWebhookError(
                f"braintree: {kind} notification lacks what Braintree always sends with it "
                f"({type(exc).__name__}; values are not echoed)"
            ) from None

    def _payment(self, event: ProviderEvent, txn: Any, key: str) -> Translation:
        sub_id = getattr(txn, "subscription_id", None)
        subscription = self.lookups.subscription(sub_id) if sub_id else None
        attempts = cycle_of(txn, subscription) if subscription is not None else [txn]
        message = payment_event_message(
            attempts,
            subscription=subscription,
            acquirer_country=self.settings.acquirer_country,
            dedupe_key=key,
        )
        return Translation(event=event, messages=(message,))

    def _subscription_charge(self, event: ProviderEvent, notification: Any) -> Translation:
        thin = list(getattr(notification.subscription, "transactions", None) or [])
        if not thin:
            return Translation.ignore(
                event, "subscription charge notification lists no transaction"
            )
        epoch = datetime.min.replace(tzinfo=UTC)
        newest = max(thin, key=lambda t: utc(getattr(t, "created_at", None)) or epoch)
        txn = self.lookups.transaction(str(newest.id))
        return self._payment(event, txn, f"braintree:attempt:{txn.id}")

    def _past_due(self, event: ProviderEvent, notification: Any) -> Translation:
        # The webhook subject is bare: read the subscription now and take its newest failure.
        subscription = self.lookups.subscription(str(notification.subscription.id))
        failed = [
            t
            for t in getattr(subscription, "transactions", None) or []
            if getattr(t, "status", None) not in SUCCESS_STATUSES
        ]
        if not failed:
            return Translation.ignore(event, "subscription is past due but lists no failed charge")
        epoch = datetime.min.replace(tzinfo=UTC)
        newest = max(failed, key=lambda t: utc(getattr(t, "created_at", None)) or epoch)
        txn = self.lookups.transaction(str(newest.id))
        return self._payment(event, txn, f"braintree:attempt:{txn.id}")

    def _settlement_declined(self, event: ProviderEvent, notification: Any) -> Translation:
        txn = self.lookups.transaction(str(notification.transaction.id))
        # A distinct key: the same transaction was first forwarded as a success when submitted.
        return self._payment(event, txn, f"braintree:attempt:{txn.id}:settlement")

    def _ended(self, event: ProviderEvent, notification: Any) -> Translation:
        return Translation.ignore(
            event,
            f"{notification.kind}: Recover has no message for it; RetryStatus answers "
            "retry=false from the subscription's current status",
        )

    def _revoked(self, event: ProviderEvent, notification: Any) -> Translation:
        meta = notification.revoked_payment_method_metadata
        message = payment_method_update(
            customer_id=meta.customer_id,
            token=meta.token,
            reason="revoked_by_customer",
            dedupe_key=f"{event.dedupe_key}:{meta.token}",
            object_id=f"payment method {meta.token}",
        )
        return Translation(event=event, messages=(message,))

    def _customer_data_updated(self, event: ProviderEvent, notification: Any) -> Translation:
        meta = notification.payment_method_customer_data_updated_metadata
        token = getattr(meta, "token", None)
        message = payment_method_update(
            customer_id=getattr(meta.payment_method, "customer_id", None),
            token=token,
            reason="customer_data_updated",
            dedupe_key=f"{event.dedupe_key}:{token}",
            object_id=f"payment method {token}",
        )
        return Translation(event=event, messages=(message,))

    def _account_updater(self, event: ProviderEvent, notification: Any) -> Translation:
        report = notification.account_updater_daily_report
        text = download_report(
            str(report.report_url),
            max_bytes=self.settings.max_report_bytes,
            client_factory=self._report_client,
        )
        rows = parse_report(
            text,
            token_column=self.settings.report_token_column,
            customer_column=self.settings.report_customer_column,
        )
        if not rows:
            return Translation.ignore(event, "account updater report lists no updated card")
        messages = tuple(
            payment_method_update(
                customer_id=row.customer_id,
                token=row.token,
                reason="account_updater",
                dedupe_key=f"{event.dedupe_key}:{row.token}",
                object_id=f"payment method {row.token}",
            )
            for row in rows
        )
        return Translation(event=event, messages=messages)

    # -- test signing and samples ---------------------------------------------------------------

    def _signing_pair(self) -> KeyPair:
        return self.settings.key_pairs[0] if self.settings.key_pairs else TEST_KEY_PAIR

    def sign_test_webhook(
        self, body: bytes, *, timestamp: datetime | None = None
    ) -> WebhookRequest:
        """Sign notification XML the SDK's way with the first key pair (or the test pair).

        ``body`` is notification XML, or a whole Braintree form body whose payload is re-signed.
        ``timestamp`` replaces the XML's ``<timestamp>`` (default: now), since that is the only
        signed time a Braintree webhook has.
        """
        if not body.lstrip().startswith(b"<"):
            form = webhooks.read_form(body, max_bytes=self.settings.max_body_bytes)
            body = webhooks.decode_notification_xml(form.payload)
        xml = webhooks.with_timestamp(body, timestamp or datetime.now(UTC))
        pair = self._signing_pair()
        form = webhooks.sign_payload(xml, pair.public_key, pair.private_key.get_secret_value())
        return WebhookRequest(
            body=webhooks.form_body(form), headers={"content-type": webhooks.FORM_CONTENT_TYPE}
        )

    def sample_facts(self) -> dict[str, Any]:
        """The API answers the samples refer to (``samples/api/*.xml``) as a facts file."""
        from recoverkit_braintree.facts import sample_facts

        return dict(sample_facts())

    def sample_webhooks(self) -> list[WebhookRequest]:
        """The bundled sample notifications, signed now with the first key pair (or the test pair).

        Translating the subscription samples calls Braintree (``transaction.find``); the demo
        runs them against cassettes or an emulator via ``api_base_url``.
        """
        folder = files("recoverkit_braintree") / "samples"
        return [
            self.sign_test_webhook((folder / f"{kind}.xml").read_bytes()) for kind in SAMPLE_KINDS
        ]

    # -- outbound -------------------------------------------------------------------------------

    def retry_status(self, invoice: InvoiceRef) -> RetryStatusResponse:
        """Retry only while the subscription is Past Due with a balance."""
        return _retry.retry_status(self.lookups, invoice)

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        """``subscription.retry_charge`` under a claim, or ``transaction.sale`` (recurring)."""
        return _retry.execute_retry(
            self.gateway,
            self.claims,
            instruction,
            now=datetime.now(UTC),
        )

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        """Check Braintree agrees with Recover's result; Braintree needs no write-back."""
        _reconcile.reconcile(self.lookups, result, invoice)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        """``none`` or ``cancel_subscription`` (idempotent: a cancelled one is left alone)."""
        _reconcile.end_dunning(self.gateway, notice, invoice, policy)

    def backfill(
        self, since: datetime, until: datetime, cursor: str | None = None
    ) -> Iterator[tuple[ProviderEvent, str]]:
        """Transactions created in ``[since, until)``, oldest first, resumable by cursor."""
        return _backfill.backfill(self.gateway, since, until, cursor, self.lookups)

    def doctor(self) -> list[DoctorCheck]:
        """Configuration checks, and the reminder that Braintree's own retries must be off."""
        checks = [
            DoctorCheck(
                "braintree merchant_id",
                bool(self.settings.merchant_id),
                "set RECOVERKIT_BRAINTREE_MERCHANT_ID",
            ),
            DoctorCheck(
                "braintree key pairs",
                bool(self.settings.key_pairs),
                f"{len(self.settings.key_pairs)} configured (RECOVERKIT_BRAINTREE_KEY_PAIRS)",
            ),
            DoctorCheck(
                "braintree automatic subscription retries are off",
                False,
                "not checkable through Braintree's API: in the Control Panel's Recurring Billing "
                "processing options turn automatic retry of failed transactions off and leave "
                "past-due subscriptions Past Due (not cancelled); otherwise Braintree and Recover "
                "both retry the same invoice (docs/providers/braintree.md)",
            ),
        ]
        return checks


def _subject_id(notification: Any) -> str | None:
    for name in ("subscription", "transaction"):
        subject = getattr(notification, name, None)
        if subject is not None:
            return str(getattr(subject, "id", "")) or None
    meta = getattr(notification, "revoked_payment_method_metadata", None)
    if meta is not None:
        return str(meta.token)
    meta = getattr(notification, "payment_method_customer_data_updated_metadata", None)
    if meta is not None:
        return str(getattr(meta, "token", "")) or None
    report = getattr(notification, "account_updater_daily_report", None)
    if report is not None:
        return str(getattr(report, "report_date", "")) or None
    return None


_Handler = Callable[[BraintreeProvider, ProviderEvent, Any], Translation]
_HANDLERS: dict[str, _Handler] = {
    "subscription_charged_unsuccessfully": BraintreeProvider._subscription_charge,
    "subscription_charged_successfully": BraintreeProvider._subscription_charge,
    "subscription_went_past_due": BraintreeProvider._past_due,
    "subscription_canceled": BraintreeProvider._ended,
    "subscription_expired": BraintreeProvider._ended,
    "transaction_settlement_declined": BraintreeProvider._settlement_declined,
    "payment_method_revoked_by_customer": BraintreeProvider._revoked,
    "payment_method_customer_data_updated": BraintreeProvider._customer_data_updated,
    "account_updater_daily_report": BraintreeProvider._account_updater,
}
