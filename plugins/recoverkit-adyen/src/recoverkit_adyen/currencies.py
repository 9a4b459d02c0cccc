"""Adyen's currency exponents where its API differs from ISO 4217.

``AdyenProvider.currency_exponents`` declares them; the core registers them under "adyen".

CLP 2, CVE 0 and ISK 2 are marked "differs from standard" in Adyen's currency table
(https://docs.adyen.com/development-resources/currency-codes/).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["ADYEN_EXPONENTS"]

ADYEN_EXPONENTS: Final[Mapping[str, int]] = {"CLP": 2, "CVE": 0, "ISK": 2}
