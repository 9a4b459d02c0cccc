"""Settings of the Stripe provider (environment prefix ``RECOVERKIT_STRIPE_``)."""

from __future__ import annotations

from typing import Annotated, Any

import stripe
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from recoverkit.provider import EndOfDunningPolicy, ProviderSettings

__all__ = ["StripeSettings"]

_POLICIES = (
    EndOfDunningPolicy.NONE,
    EndOfDunningPolicy.MARK_UNCOLLECTIBLE,
    EndOfDunningPolicy.VOID,
    EndOfDunningPolicy.CANCEL_SUBSCRIPTION,
)


class StripeSettings(ProviderSettings):
    """Everything the Stripe provider reads; secrets never appear in ``repr`` or logs."""

    model_config = SettingsConfigDict(env_prefix="RECOVERKIT_STRIPE_", extra="forbid", frozen=True)

    #: Secret API key (``sk_…`` or a restricted ``rk_…`` key); only outbound calls need it.
    api_key: SecretStr | None = None
    #: Endpoint signing secrets (``whsec_…``). Several at once while rolling a secret: comma
    #: separated in the environment, e.g. ``whsec_new,whsec_old``.
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    #: Maximum age in seconds of a webhook's signed timestamp (Stripe's libraries use 300).
    webhook_tolerance: int = Field(default=300, gt=0)
    #: Base URL of the API: point it at localstripe or stripe-mock in tests.
    api_base: str = stripe.DEFAULT_API_BASE
    #: API version sent on every call; pin the webhook endpoint to the same version in Stripe.
    api_version: str = stripe.api_version
    #: What ``end_dunning`` does when Recover gives up: none, mark_uncollectible, void,
    #: cancel_subscription.
    end_of_dunning_policy: EndOfDunningPolicy = EndOfDunningPolicy.NONE
    #: Country of the Stripe account (Recover's ``acquirer_country``; Stripe charges omit it).
    acquirer_country: str = Field(default="US", min_length=2, max_length=2)
    #: How many fetched Stripe objects the enrichment cache keeps.
    cache_size: int = Field(default=2048, gt=0)
    #: SDK network retries per call (safe: every POST carries an idempotency key).
    max_network_retries: int = Field(default=2, ge=0)
    #: Seconds before an API call times out.
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("end_of_dunning_policy")
    @classmethod
    def _supported_policy(cls, value: EndOfDunningPolicy) -> EndOfDunningPolicy:
        if value not in _POLICIES:
            allowed = ", ".join(p.value for p in _POLICIES)
            raise ValueError(f"Stripe supports end_of_dunning_policy {allowed}, not {value.value}")
        return value
