"""The Adyen :class:`~recoverkit.provider.Provider`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from typing import Any, ClassVar

from recoverkit.errors import ConfigurationError
from recoverkit.provider import (
    BillingContext,
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
from recoverkit_adyen import retry as _retry
from recoverkit_adyen import webhooks
from recoverkit_adyen.context import default_billing_context, signed_view
from recoverkit_adyen.currencies import ADYEN_EXPONENTS
from recoverkit_adyen.reconcile import EndDunningHook, apply_end_of_dunning, default_retry_status
from recoverkit_adyen.settings import TEST_HMAC_KEY, AdyenSettings
from recoverkit_adyen.translate import TranslateOptions, translate_event

__all__ = ["SAMPLE_FILES", "AdyenProvider"]

logger = logging.getLogger("recoverkit_adyen")

#: Bundled sample webhooks (``recoverkit_adyen/samples/``), signed when ``sample_webhooks`` runs.
SAMPLE_FILES = (
    "authorisation_refused_not_enough_balance.json",
    "authorisation_refused_mastercard_do_not_retry.json",
    "authorisation_success_account_updater.json",
    "recurring_contract.json",
    "token_updated.json",
)

BillingContextHook = Callable[[ProviderEvent], BillingContext | None]
RetryStatusHook = Callable[[InvoiceRef], RetryStatusResponse]
ReconcileHook = Callable[[RetryResults, InvoiceRef], None]


class AdyenProvider(Provider):
    """Adyen: standard + tokenization webhooks in, Checkout ContAuth retries out.

    Adyen holds no subscriptions or invoices, so four merchant callables can be set on an
    instance (the service sets ``billing_context`` to the ``billing_context`` hook):

    - ``billing_context(event) -> BillingContext | None``: the customer, subscription and invoice
      of a payment; None falls back to the metadata / merchantReference convention
      (:mod:`recoverkit_adyen.context`), and when that fails too the event is held
      (:class:`~recoverkit_adyen.context.BillingContextMissingError`).
    - ``retry_status_hook(invoice)``: is the invoice still open in your platform?
    - ``reconcile_hook(result, invoice)``: mark the invoice paid in your platform.
    - ``end_dunning_hook(notice, invoice, policy)``: cancel / write off in your platform.
    """

    name: ClassVar[str] = "adyen"
    currency_exponents = ADYEN_EXPONENTS  # where Adyen differs from ISO 4217
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.SIGN_TEST_WEBHOOK,
            Capability.EXECUTE_RETRY,
            Capability.RETRY_STATUS,
            Capability.RECONCILE,
            Capability.END_DUNNING,
        }
    )
    settings_class: ClassVar[type[AdyenSettings]] = AdyenSettings
    #: Adyen's documented acknowledgement (any 2xx works since 2024; this works under both rules).
    webhook_ack: ClassVar[tuple[int, str, bytes]] = (200, "text/plain", b"[accepted]")

    settings: AdyenSettings

    def __init__(
        self,
        settings: AdyenSettings | None = None,
        *,
        billing_context: BillingContextHook | None = None,
        retry_status_hook: RetryStatusHook | None = None,
        reconcile_hook: ReconcileHook | None = None,
        end_dunning_hook: EndDunningHook | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(settings)
        if not isinstance(self.settings, AdyenSettings):
            raise ConfigurationError("adyen: settings must be AdyenSettings")
        self.billing_context = billing_context
        self.retry_status_hook = retry_status_hook
        self.reconcile_hook = reconcile_hook
        self.end_dunning_hook = end_dunning_hook
        self._client = client
        self._verified: tuple[bytes, Any] | None = None
        self._keys = webhooks.decode_keys(
            key.get_secret_value() for key in self.settings.webhook_secrets
        )
        password = self.settings.basic_auth_password
        self._basic_auth = (
            (self.settings.basic_auth_username or "", password.get_secret_value())
            if password is not None
            else None
        )
        self._options = TranslateOptions(
            acquirer_country=self.settings.acquirer_country,
            contauth_only=self.settings.contauth_only,
        )

    @classmethod
    def for_demo(cls) -> AdyenProvider:
        """Offline demo: the documented test HMAC key and a demo acquirer country (NL)."""
        return cls(AdyenSettings(webhook_secrets=[TEST_HMAC_KEY], acquirer_country="NL"))

    # -- inbound -------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Basic auth when configured, then every notification item (or the raw body, for
        ``HmacSignature``) must match a key.

        A body over ``max_body_bytes`` never gets here: the ``Provider`` base refuses it before
        ``verify`` and ``parse`` run (:meth:`~recoverkit.provider.Provider.check_body_size`).
        """
        if not self._keys:
            raise ConfigurationError(
                "adyen: no webhook HMAC key configured (RECOVERKIT_ADYEN_WEBHOOK_SECRETS)"
            )
        if self._basic_auth is not None:
            webhooks.check_basic_auth(request, *self._basic_auth)
        decoded = webhooks.verify_request(request, self._keys)
        self._verified = (request.body, decoded)

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        """One event per notification item; dedupe key ``pspReference:eventCode:success``."""
        # The body verify just decoded is reused once, for the very same bytes object: the
        # receiver calls verify then parse on one request. Any other call decodes afresh.
        verified, self._verified = self._verified, None
        if verified is not None and verified[0] is request.body:
            return webhooks.parse_request(request, verified[1])
        return webhooks.parse_request(request)

    def translate(self, event: ProviderEvent) -> Translation:
        """Recover messages for one event; raises ``BillingContextMissingError`` to hold it."""
        return translate_event(event, self._resolve_context, self._options)

    def _resolve_context(self, event: ProviderEvent) -> BillingContext:
        # Which customer, subscription and invoice an item belongs to is decided from the
        # HMAC-signed fields only: the hook sees an event whose data holds nothing else.
        if self.billing_context is not None:
            context = self.billing_context(signed_view(event))
            if context is not None:
                return context
        return default_billing_context(event)

    def _signing_key(self) -> bytes:
        return self._keys[0] if self._keys else webhooks.decode_keys([TEST_HMAC_KEY])[0]

    def sign_test_webhook(
        self, body: bytes, *, timestamp: datetime | None = None
    ) -> WebhookRequest:
        """Sign ``body`` with the first configured key (the documented test key if none).

        Standard notifications get each item's ``hmacSignature`` set (the body is re-serialized);
        other bodies get an ``HmacSignature`` header. Adyen signs no timestamp: ``timestamp`` is
        accepted for the common interface and ignored.
        """
        return webhooks.sign_body(body, self._signing_key())

    def sample_webhooks(self) -> list[WebhookRequest]:
        """The bundled samples, signed now with the first configured key."""
        folder = files("recoverkit_adyen") / "samples"
        requests = []
        for name in SAMPLE_FILES:
            raw = (folder / name).read_bytes()
            # compact the file's JSON: header-signed bodies are signed byte for byte
            body = json.dumps(json.loads(raw), separators=(",", ":")).encode("utf-8")
            requests.append(self.sign_test_webhook(body))
        return requests

    # -- outbound ------------------------------------------------------------------------------

    def _adyen(self) -> Any:
        if self._client is None:
            self._client = _retry.build_client(self.settings)
        return self._client

    def retry_status(self, invoice: InvoiceRef) -> RetryStatusResponse:
        """The merchant's ``retry_status_hook``, or the ledger-only default."""
        if self.retry_status_hook is not None:
            return self.retry_status_hook(invoice)
        return default_retry_status(invoice)

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        """Checkout ``/payments`` on the stored card, ContAuth, with the idempotency key."""
        return _retry.execute_retry(instruction, self.settings, self._adyen())

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        """Adyen has no invoice to mark paid: calls ``reconcile_hook`` when set."""
        if self.reconcile_hook is not None:
            self.reconcile_hook(result, invoice)
        else:
            logger.info(
                "adyen: retry result for invoice %s (success=%s): no reconcile_hook set, nothing "
                "to write at Adyen",
                invoice.invoice_id,
                result.success,
            )

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        """``disable_token`` deletes the stored card at Adyen; other actions need the hook.

        Nothing is done at Adyen when the invoice was recovered.
        """
        apply_end_of_dunning(
            notice,
            invoice,
            policy,
            settings=self.settings,
            client=self._adyen,
            hook=self.end_dunning_hook,
        )

    # -- diagnostics ---------------------------------------------------------------------------

    def doctor(self) -> list[DoctorCheck]:
        """Configuration checks, and the reminder to switch Adyen's own retries off."""
        settings = self.settings
        checks = [
            DoctorCheck(
                "adyen webhook HMAC key",
                bool(self._keys),
                f"{len(self._keys)} key(s) configured"
                if self._keys
                else "set RECOVERKIT_ADYEN_WEBHOOK_SECRETS to the endpoint's HMAC key(s)",
            ),
            DoctorCheck(
                "adyen webhook basic auth",
                self._basic_auth is not None,
                "on, checked with the HMAC"
                if self._basic_auth is not None
                else "warning: off. Adyen recommends HTTP basic auth on the webhook endpoint in "
                "addition to HMAC: set it in the Customer Area and set "
                "RECOVERKIT_ADYEN_BASIC_AUTH_USERNAME / RECOVERKIT_ADYEN_BASIC_AUTH_PASSWORD",
            ),
            DoctorCheck(
                "adyen Checkout credentials",
                settings.api_key is not None and bool(settings.merchant_account),
                f"{settings.checkout_url()} as {settings.merchant_account}"
                if settings.api_key is not None and settings.merchant_account
                else "set RECOVERKIT_ADYEN_API_KEY and RECOVERKIT_ADYEN_MERCHANT_ACCOUNT to retry",
            ),
            DoctorCheck(
                "adyen acquirer country",
                settings.acquirer_country is not None or self.billing_context is not None,
                settings.acquirer_country
                or "set RECOVERKIT_ADYEN_ACQUIRER_COUNTRY (or return it from billing_context)",
            ),
            DoctorCheck(
                "adyen Auto Rescue and Adyen retries off (reminder: not checkable by API)",
                True,
                "Adyen must not retry payments recoverkit manages: ask Adyen support to disable "
                "account-level Auto Rescue and never send additionalData.autoRescue=true; an "
                "AUTORESCUE webhook or retry.rescueScheduled=true in the logs means it is on",
            ),
        ]
        return checks
