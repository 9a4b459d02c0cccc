"""Map stripe-python exceptions onto recoverkit's error tree.

The distinction that matters for money: :class:`RequestNotSentError` (the request never reached
Stripe, or Stripe refused it before acting: safe to try again) versus :class:`OutcomeUnknownError`
(Stripe may have acted: look the outcome up, never repeat blindly). Card declines are not errors:
callers catch ``stripe.CardError`` first and turn it into data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import stripe

from recoverkit.errors import OutcomeUnknownError, ProviderError, RequestNotSentError

__all__ = ["call_stripe", "request_never_sent"]

T = TypeVar("T")

# requests/urllib3 exception names raised before a single byte of the request was written.
_NOT_SENT_NAMES = frozenset(
    {"ConnectTimeout", "NewConnectionError", "NameResolutionError", "ConnectTimeoutError"}
)


def request_never_sent(exc: BaseException) -> bool:
    """True when the cause chain shows the connection was never established."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in _NOT_SENT_NAMES:
            return True
        # requests wraps urllib3's MaxRetryError whose .reason is the real cause
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException) and type(reason).__name__ in _NOT_SENT_NAMES:
            return True
        args = getattr(current, "args", ())
        if args and isinstance(args[0], BaseException):
            current = args[0]
            continue
        current = current.__cause__ or current.__context__
    return False


def call_stripe(what: str, object_id: str, call: Callable[[], T]) -> T:
    """Run one SDK call; non-card Stripe errors become recoverkit errors naming the object."""
    try:
        return call()
    except stripe.CardError:
        raise
    except stripe.APIConnectionError as exc:
        if request_never_sent(exc):
            raise RequestNotSentError(
                f"stripe: {what} for {object_id} was not sent (could not connect): check "
                "RECOVERKIT_STRIPE_API_BASE and the network; it is safe to try again",
                provider="stripe",
                object_id=object_id,
            ) from exc
        raise OutcomeUnknownError(
            f"stripe: {what} for {object_id}: the connection failed after the request was "
            "sent; Stripe may have acted. Look the object up before doing anything else",
            provider="stripe",
            object_id=object_id,
        ) from exc
    except (stripe.RateLimitError, stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise RequestNotSentError(
            f"stripe: {what} for {object_id} was refused before Stripe acted "
            f"({type(exc).__name__}: {exc.user_message or exc}); fix the key/permissions or "
            "wait, then try again",
            provider="stripe",
            object_id=object_id,
        ) from exc
    except stripe.APIError as exc:
        raise OutcomeUnknownError(
            f"stripe: {what} for {object_id}: Stripe answered {exc.http_status}; the outcome is "
            "unknown. Look the object up before doing anything else",
            provider="stripe",
            object_id=object_id,
        ) from exc
    except stripe.StripeError as exc:
        raise ProviderError(
            f"stripe: {what} for {object_id} failed: {exc.user_message or exc}",
            provider="stripe",
            object_id=object_id,
        ) from exc
