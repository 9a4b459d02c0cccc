"""Settings of the Adyen provider (environment prefix ``RECOVERKIT_ADYEN_``)."""

from __future__ import annotations

import binascii
from typing import Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from recoverkit.provider import EndOfDunningPolicy, ProviderSettings

__all__ = ["DEFAULT_CHECKOUT_VERSION", "TEST_HMAC_KEY", "AdyenSettings"]

#: The Checkout API version this plugin was written and tested against (Adyen 16's default).
DEFAULT_CHECKOUT_VERSION: Final = 72

#: A documented, public test HMAC key (the one in the Adyen Python library's ``test/UtilTest.py``).
#: ``sample_webhooks`` and ``recoverkit demo`` sign with it when no key is configured. Never use it
#: for a real webhook endpoint.
TEST_HMAC_KEY: Final = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

#: Policies ``end_dunning`` can apply at Adyen. Adyen has no invoices or subscriptions, so
#: ``void``, ``mark_uncollectible`` and ``cancel_subscription`` belong to the merchant's platform
#: (the ``end_dunning_hook``), not to this setting.
_ADYEN_POLICIES: Final = frozenset({EndOfDunningPolicy.NONE, EndOfDunningPolicy.DISABLE_TOKEN})


class AdyenSettings(ProviderSettings):
    """Everything the Adyen provider needs; secrets are ``SecretStr`` and never printed."""

    model_config = SettingsConfigDict(env_prefix="RECOVERKIT_ADYEN_", extra="forbid", frozen=True)

    #: HMAC keys of the webhook endpoint (hex, as shown in the Customer Area). Several at once
    #: while rotating: a notification signed with any of them is accepted.
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    #: Checkout API key (``X-API-Key``); needed for retries and disabling tokens.
    api_key: SecretStr | None = None
    merchant_account: str | None = None
    environment: Literal["test", "live"] = "test"
    #: The live URL prefix from the Customer Area (``{prefix}-checkout-live.adyenpayments.com``).
    live_endpoint_prefix: str | None = None
    #: Checkout API version pinned for every call (``/v72/payments``).
    checkout_api_version: int = Field(default=DEFAULT_CHECKOUT_VERSION, ge=68, le=99)
    #: Base URL of the Checkout API without the version, e.g. ``http://127.0.0.1:8080`` for a local
    #: emulator. The SDK's version setting does not rewrite custom URLs, so the plugin appends
    #: ``/v{checkout_api_version}`` itself.
    checkout_base_url: str | None = None
    http_timeout_seconds: int = Field(default=30, ge=1, le=120)
    #: Sent as ``returnUrl`` when set (the schema lists it as required; card ContAuth payments do
    #: not redirect, so it is left out by default).
    return_url: str | None = None
    #: ``recurringProcessingModel`` of retries.
    recurring_processing_model: Literal["Subscription", "UnscheduledCardOnFile", "CardOnFile"] = (
        "Subscription"
    )
    #: Send ``additionalData["retry.skipRetry"]="true"`` on retries so Adyen does not retry them
    #: itself (API reference, ``AdditionalDataRetry``).
    skip_adyen_retries: bool = True
    #: ``transactions[].acquirer_country`` (Adyen's webhooks do not say where it acquired).
    acquirer_country: str | None = Field(default=None, min_length=2, max_length=2)
    #: Translate AUTHORISATION items only for ContAuth payments when ``shopperInteraction`` is
    #: present in ``additionalData`` (Ecommerce checkouts are not renewals).
    contauth_only: bool = True
    end_of_dunning_policy: EndOfDunningPolicy = EndOfDunningPolicy.NONE
    #: HTTP basic auth of the webhook endpoint (Customer Area > Webhooks > your endpoint >
    #: Authentication), checked in addition to the HMAC when both are set. Adyen recommends it.
    basic_auth_username: str | None = Field(default=None, min_length=1)
    basic_auth_password: SecretStr | None = None

    @field_validator("webhook_secrets")
    @classmethod
    def _hex_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for index, key in enumerate(keys):
            value = key.get_secret_value()
            try:
                decoded = binascii.a2b_hex(value)
            except (binascii.Error, ValueError):
                raise ValueError(
                    f"webhook_secrets[{index}] is not a hex HMAC key: copy it from the Customer "
                    "Area (Developers > Webhooks > your endpoint > HMAC key)"
                ) from None
            if not decoded:
                raise ValueError(f"webhook_secrets[{index}] is empty")
        return keys

    @field_validator("acquirer_country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @field_validator("end_of_dunning_policy")
    @classmethod
    def _adyen_policy(cls, policy: EndOfDunningPolicy) -> EndOfDunningPolicy:
        if policy not in _ADYEN_POLICIES:
            raise ValueError(
                f"{policy.value!r} has no meaning at Adyen (no invoices or subscriptions there): "
                "use 'none' or 'disable_token', and do the rest in the provider's end_dunning_hook"
            )
        return policy

    @model_validator(mode="after")
    def _basic_auth_pair(self) -> AdyenSettings:
        if (self.basic_auth_username is None) != (self.basic_auth_password is None):
            raise ValueError(
                "basic_auth_username and basic_auth_password go together: set both (as in the "
                "Customer Area's webhook authentication) or neither"
            )
        if self.basic_auth_password is not None and not self.basic_auth_password.get_secret_value():
            raise ValueError("basic_auth_password is empty")
        if self.basic_auth_username is not None and ":" in self.basic_auth_username:
            raise ValueError("basic_auth_username cannot contain ':' (RFC 7617)")
        return self

    @model_validator(mode="after")
    def _live_needs_prefix(self) -> AdyenSettings:
        if (
            self.environment == "live"
            and not self.checkout_base_url
            and not self.live_endpoint_prefix
        ):
            raise ValueError(
                "environment 'live' needs live_endpoint_prefix (Customer Area > API URLs)"
            )
        return self

    def checkout_url(self) -> str:
        """The Checkout base URL including the pinned version, e.g. ``…/v72``."""
        if self.checkout_base_url:
            base = self.checkout_base_url.rstrip("/")
        elif self.environment == "live":
            base = f"https://{self.live_endpoint_prefix}-checkout-live.adyenpayments.com/checkout"
        else:
            base = "https://checkout-test.adyen.com"
        return f"{base}/v{self.checkout_api_version}"
