"""recoverkit-stripe: Stripe webhooks in, retries out, reconciliation back, history backfill."""

from recoverkit_stripe.provider import StripeProvider
from recoverkit_stripe.settings import StripeSettings

__all__ = ["StripeProvider", "StripeSettings"]
