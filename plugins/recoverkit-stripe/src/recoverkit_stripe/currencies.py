"""Stripe's currency exponents where its API differs from ISO 4217.

``StripeProvider.currency_exponents`` declares them; the core registers them under "stripe".

Stripe's zero- and three-decimal lists are declared whole (also where they agree with ISO), so a
later ISO change cannot silently change what is sent to Stripe:

- zero-decimal: https://docs.stripe.com/currencies#zero-decimal (MGA is 0 here, ISO says 2);
- three-decimal: https://docs.stripe.com/currencies#three-decimal;
- ISK is sent as a two-decimal amount for backward compatibility although ISO says 0
  (https://docs.stripe.com/currencies#special-cases).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["STRIPE_EXPONENTS"]

_ZERO_DECIMAL: Final = (
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
_THREE_DECIMAL: Final = ("BHD", "JOD", "KWD", "OMR", "TND")

STRIPE_EXPONENTS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_ZERO_DECIMAL, 0),
    **dict.fromkeys(_THREE_DECIMAL, 3),
    "ISK": 2,
}
