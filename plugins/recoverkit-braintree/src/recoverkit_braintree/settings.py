"""Settings of the Braintree provider (environment variables ``RECOVERKIT_BRAINTREE_*``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from recoverkit.provider import EndOfDunningPolicy, ProviderSettings

__all__ = ["SUPPORTED_END_OF_DUNNING", "BraintreeSettings", "KeyPair"]

#: The end-of-dunning policies Braintree can apply (it has no "uncollectible" or "void" invoice).
SUPPORTED_END_OF_DUNNING = frozenset(
    {EndOfDunningPolicy.NONE, EndOfDunningPolicy.CANCEL_SUBSCRIPTION}
)


class KeyPair(BaseModel):
    """One Braintree API key pair (Control Panel → Settings → API → API Keys)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_key: str = Field(min_length=1)
    private_key: SecretStr


class BraintreeSettings(ProviderSettings):
    """Everything the Braintree provider reads from the environment.

    ``key_pairs`` holds several pairs at once so keys can be rotated without dropping webhooks:
    a webhook is accepted when any configured pair signed it; API calls use the first pair.
    In the environment it is JSON: ``RECOVERKIT_BRAINTREE_KEY_PAIRS='[{"public_key": "…",
    "private_key": "…"}]'``.
    """

    model_config = SettingsConfigDict(
        env_prefix="RECOVERKIT_BRAINTREE_", extra="forbid", frozen=True
    )

    environment: Literal["sandbox", "production"] = "sandbox"
    merchant_id: str = ""
    key_pairs: list[KeyPair] = Field(default_factory=list)
    #: Point the SDK somewhere else (a local emulator, tests): ``http://127.0.0.1:3000``.
    #: The SDK speaks HTTPS only on port 443 (``braintree.Environment.protocol``).
    api_base_url: str | None = None
    #: Largest webhook body accepted, in bytes; larger bodies are refused before decoding.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    #: A notification whose signed ``timestamp`` is older than this is refused (replay guard).
    #: Braintree redelivers for up to 24 hours in production, so keep it above that.
    webhook_tolerance: timedelta = timedelta(hours=26)
    #: A notification whose signed ``timestamp`` is more than this ahead of our clock is refused
    #: (a forged or replay-prepared timestamp; Braintree's clock and ours differ by seconds).
    webhook_max_clock_skew: timedelta = Field(default=timedelta(minutes=5), ge=timedelta(0))
    end_of_dunning_policy: EndOfDunningPolicy = EndOfDunningPolicy.NONE
    #: Braintree transactions do not carry the acquirer's country; Recover requires it.
    acquirer_country: str = Field(default="US", min_length=2, max_length=2)
    #: How long ``transaction.find`` / ``subscription.find`` answers are reused while translating.
    lookup_cache_seconds: float = Field(default=300.0, ge=0)
    #: SQLite file holding per-subscription retry claims; ``None`` keeps them in memory only
    #: (a crash then loses the claim — use a file in production).
    claims_path: Path | None = None
    #: Largest account updater report downloaded, in bytes.
    max_report_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    #: Column names of the account updater CSV report (Braintree does not publish the layout in
    #: the sources we checked; adjust if your report differs).
    report_token_column: str = "Payment Method Token"  # noqa: S105 - a CSV column name
    report_customer_column: str = "Customer ID"
    #: Timeout of one Braintree API call, in seconds.
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"api_base_url must be http(s)://host[:port], got {value!r}")
        return value

    @field_validator("end_of_dunning_policy")
    @classmethod
    def _policy(cls, value: EndOfDunningPolicy) -> EndOfDunningPolicy:
        if value not in SUPPORTED_END_OF_DUNNING:
            allowed = ", ".join(sorted(p.value for p in SUPPORTED_END_OF_DUNNING))
            raise ValueError(f"Braintree supports end_of_dunning_policy {allowed}; got {value}")
        return value

    @model_validator(mode="after")
    def _unique_public_keys(self) -> BraintreeSettings:
        keys = [pair.public_key for pair in self.key_pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("key_pairs: each public_key may appear only once")
        return self
