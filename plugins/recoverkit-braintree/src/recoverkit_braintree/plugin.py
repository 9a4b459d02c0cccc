"""Entry point of the ``recoverkit`` plugin group: registers :class:`BraintreeProvider`."""

from __future__ import annotations

from collections.abc import Callable

from recoverkit.hookspecs import hookimpl
from recoverkit.provider import Provider
from recoverkit_braintree.provider import BraintreeProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register the ``braintree`` provider."""
    register(BraintreeProvider)
