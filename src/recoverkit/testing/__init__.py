"""The conformance kit for provider plugins.

A plugin's tests subclass :class:`ProviderConformance`, override a few fixtures, and inherit tests
for signatures, translation, dedupe keys, decline tables, idempotency and data hygiene. What a
provider does not declare in ``capabilities`` is skipped with a reason. The kit is registered as a
pytest plugin (entry point ``pytest11``), so its helpers are available without imports too.
"""

from recoverkit.testing.conformance import IdempotencyCase, ProviderConformance, Sample
from recoverkit.testing.scan import Finding, luhn_valid, scan_paths, scan_text

__all__ = [
    "Finding",
    "IdempotencyCase",
    "ProviderConformance",
    "Sample",
    "luhn_valid",
    "scan_paths",
    "scan_text",
]
