"""Import the ``braintree`` SDK once, hiding the DeprecationWarning it raises at import time.

braintree 4.48's ``dispute.py`` and ``dispute_search.py`` call ``warnings.warn(...,
DeprecationWarning)`` while they are imported (chargeback protection level). That fails any
process running with warnings as errors (pytest ``-W error``) before our code runs. Only those
two messages are filtered, and only during the import.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    for message in ("Use ProtectionLevel enum instead", "Use protection_level parameter instead"):
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
    import braintree

__all__ = ["braintree"]
