"""``recoverkit doctor`` checks for Stripe: webhook subscriptions and Smart Retries."""

from __future__ import annotations

from typing import Any

import stripe

from recoverkit.errors import ProviderError
from recoverkit.provider import DoctorCheck
from recoverkit_stripe.errors import call_stripe

__all__ = ["REQUIRED_EVENTS", "SMART_RETRIES_STEPS", "doctor_checks"]

#: Every event type the provider reads (translated, or kept as ledger state).
REQUIRED_EVENTS = (
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.paid",
    "invoice.payment_action_required",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "charge.failed",
    "charge.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "payment_method.automatically_updated",
    "payment_method.updated",
    "payment_method.attached",
    "payment_method.detached",
    "customer.source.updated",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)

SMART_RETRIES_STEPS = (
    "Stripe's own retries cannot be read through the API; check them by hand so that Stripe and "
    "Recover never retry the same invoice: Dashboard → Billing → Revenue recovery → Retries → "
    "under 'Manage failed payments for subscriptions' turn Smart Retries off (no custom retry "
    "schedule either) and save; then Settings → Billing → Invoices → do the same for one-off "
    "invoices. Per invoice you can also set auto_advance=false "
    "(https://docs.stripe.com/billing/revenue-recovery/smart-retries)."
)


def doctor_checks(client: stripe.StripeClient | None) -> list[DoctorCheck]:
    """One check per enabled webhook endpoint, plus the Smart Retries reminder."""
    checks: list[DoctorCheck] = []
    if client is None:
        checks.append(
            DoctorCheck(
                "stripe: API key",
                False,
                "RECOVERKIT_STRIPE_API_KEY is not set: webhook endpoints cannot be checked",
            )
        )
    else:
        checks.extend(_endpoint_checks(client))
    checks.append(
        DoctorCheck("stripe: Smart Retries off (manual check)", True, SMART_RETRIES_STEPS)
    )
    return checks


def _endpoint_checks(client: stripe.StripeClient) -> list[DoctorCheck]:
    try:
        page = call_stripe(
            "listing webhook endpoints",
            "account",
            lambda: client.v1.webhook_endpoints.list(params={"limit": 100}),
        )
    except ProviderError as exc:
        return [DoctorCheck("stripe: webhook endpoints", False, str(exc))]
    endpoints: list[dict[str, Any]] = [e.to_dict() for e in page.auto_paging_iter()]
    enabled = [e for e in endpoints if e.get("status", "enabled") == "enabled"]
    if not enabled:
        return [
            DoctorCheck(
                "stripe: webhook endpoints",
                False,
                "no enabled webhook endpoint: add one pointing at https://<host>/webhooks/stripe",
            )
        ]
    checks = []
    for endpoint in enabled:
        events = set(endpoint.get("enabled_events") or [])
        missing = [] if "*" in events else [e for e in REQUIRED_EVENTS if e not in events]
        version = endpoint.get("api_version") or "account default"
        detail = f"{endpoint.get('url')} (API version {version})"
        if missing:
            detail += ": missing " + ", ".join(missing)
        checks.append(
            DoctorCheck(f"stripe: webhook endpoint {endpoint.get('id')}", not missing, detail)
        )
    return checks
