"""Entry point ``adyen`` in the ``recoverkit`` group: registers :class:`AdyenProvider`."""

from __future__ import annotations

from collections.abc import Callable

from recoverkit.hookspecs import hookimpl
from recoverkit.provider import Provider
from recoverkit_adyen.provider import AdyenProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register the Adyen provider."""
    register(AdyenProvider)
