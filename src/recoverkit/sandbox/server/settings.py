"""Settings of ``recoverkit sandbox serve`` (``RECOVERKIT_SANDBOX_*`` environment variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["SandboxSettings"]


class SandboxSettings(BaseSettings):
    """How the embedded Recover behaves. Defaults follow Butter's documented behaviour."""

    model_config = SettingsConfigDict(env_prefix="RECOVERKIT_SANDBOX_", extra="forbid")

    database_url: str = "sqlite:///recoverkit-sandbox.db"
    #: Keys merchants send as ``x-api-key`` to the ``/recover/…`` ingest endpoints.
    api_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr("sandbox_key")])
    #: The merchant's base URL: RetryStatus is ``POST {merchant_url}/retry/{invoice_id}``.
    merchant_url: str = "http://127.0.0.1:8000"
    retry_results_path: str = "/webhooks/retry-results"
    end_of_dunning_path: str = "/webhooks/end-of-dunning"
    #: What the sandbox presents to the merchant's endpoints (``x-api-key``).
    merchant_api_key: SecretStr = SecretStr("merchant_key")
    #: The secret Butter-style webhooks are signed with.
    signing_secret: SecretStr = SecretStr("sandbox_signing_secret")
    #: How long a signed webhook stays valid (the expiry header).
    webhook_ttl: timedelta = timedelta(hours=1)
    #: Redelivery of failed webhooks: Butter retries every 12 hours for 7 days.
    redelivery_interval: timedelta = timedelta(hours=12)
    redelivery_window: timedelta = timedelta(days=7)
    #: How long an invoice stays in dunning after its first failure.
    dunning_window: timedelta = timedelta(days=30)
    #: How long to wait before trying again when the merchant's RetryStatus endpoint is unreachable.
    retry_status_backoff: timedelta = timedelta(hours=1)
    #: How long an in-flight attempt's claim lasts before another worker may take it over.
    claim_ttl: timedelta = timedelta(minutes=5)
    #: Name of the retry policy (``fixed``, ``rules``, ``learned``, ``adaptive``).
    policy: str = "rules"
    #: Share of invoices handled by ``holdout_policy`` instead, to measure the policy's uplift
    #: (``recoverkit sandbox uplift``); 0 turns the holdout off.
    holdout_share: float = Field(default=0.1, ge=0.0, lt=1.0)
    #: The baseline the holdout invoices get.
    holdout_policy: str = "fixed"
    #: PSP names besides Butter's list that the ingest endpoints accept.
    extra_psp_names: list[str] = Field(default_factory=list)
    #: Visa reattempts allowed per card in 30 days (15 by default; Visa allows 20 since May 2025).
    visa_reattempts_per_30_days: int = 15
