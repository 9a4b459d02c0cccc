"""Entry point ``recoverkit: stripe``: registers :class:`StripeProvider`."""

from __future__ import annotations

from collections.abc import Callable

from recoverkit import Provider, hookimpl
from recoverkit_stripe.provider import StripeProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register the Stripe provider."""
    register(StripeProvider)
