"""recoverkit provider for Braintree: webhooks in, retries out, reconciliation back.

See ``docs/providers/braintree.md`` for setup. Public names are listed in ``__all__``.
"""

from recoverkit_braintree import _sdk  # noqa: F401  (first: imports the SDK quietly)
from recoverkit_braintree.provider import BraintreeProvider
from recoverkit_braintree.settings import BraintreeSettings, KeyPair

__all__ = ["BraintreeProvider", "BraintreeSettings", "KeyPair"]
