"""Building SDK gateways from settings, cached lookups, and SDK error translation."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import braintree
import requests
import urllib3
from braintree.exceptions.authentication_error import AuthenticationError
from braintree.exceptions.authorization_error import AuthorizationError
from braintree.exceptions.braintree_error import BraintreeError
from braintree.exceptions.gateway_timeout_error import GatewayTimeoutError
from braintree.exceptions.http.connection_error import ConnectionError as BtConnectionError
from braintree.exceptions.http.invalid_response_error import InvalidResponseError
from braintree.exceptions.http.timeout_error import ConnectTimeoutError, ReadTimeoutError
from braintree.exceptions.http.timeout_error import TimeoutError as BtTimeoutError
from braintree.exceptions.not_found_error import NotFoundError
from braintree.exceptions.request_timeout_error import RequestTimeoutError
from braintree.exceptions.server_error import ServerError
from braintree.exceptions.service_unavailable_error import ServiceUnavailableError
from braintree.exceptions.too_many_requests_error import TooManyRequestsError
from braintree.exceptions.unexpected_error import UnexpectedError

from recoverkit.errors import (
    ConfigurationError,
    MissingFactError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
)
from recoverkit_braintree.settings import BraintreeSettings, KeyPair

__all__ = ["CachedLookups", "api_errors", "build_gateway", "environment_for"]

PSP = "braintree"
_T = TypeVar("_T")


def environment_for(settings: BraintreeSettings) -> Any:
    """The SDK ``Environment``: sandbox, production, or ``api_base_url`` (port passed as text)."""
    if settings.api_base_url is None:
        return (
            braintree.Environment.Production
            if settings.environment == "production"
            else braintree.Environment.Sandbox
        )
    parts = urlsplit(settings.api_base_url)
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    base = braintree.Environment.Sandbox
    return braintree.Environment(
        "custom", parts.hostname, port, base.auth_url, port == "443", base.ssl_certificate
    )


def build_gateway(settings: BraintreeSettings, pair: KeyPair) -> Any:
    """A ``BraintreeGateway`` for one key pair."""
    if not settings.merchant_id:
        raise ConfigurationError(
            "braintree: merchant_id is not set (RECOVERKIT_BRAINTREE_MERCHANT_ID)"
        )
    return braintree.BraintreeGateway(
        braintree.Configuration(
            environment=environment_for(settings),
            merchant_id=settings.merchant_id,
            public_key=pair.public_key,
            private_key=pair.private_key.get_secret_value(),
            timeout=settings.timeout,
            # Without it the SDK lets requests' exceptions (a dropped connection, a reset)
            # through unwrapped; with it they arrive as braintree.exceptions.http.* errors.
            wrap_http_exceptions=True,
        )
    )


def _never_sent(exc: BaseException) -> bool:
    """True when the exception chain shows the connection was never established.

    requests reports a refused connection and a connection dropped mid-request with the same
    ``ConnectionError``; urllib3's ``NewConnectionError`` (refused, unreachable, DNS) in the
    chain is what says no byte of the request reached Braintree.
    """
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        stack.extend((item.__cause__, item.__context__, getattr(item, "reason", None)))
        stack.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return False


#: Transport failures after which a request may have reached Braintree (outcome unknown).
_IN_DOUBT = (
    ReadTimeoutError,
    BtTimeoutError,
    BtConnectionError,
    InvalidResponseError,
    UnexpectedError,
    ServerError,
    ServiceUnavailableError,
    GatewayTimeoutError,
    RequestTimeoutError,
    requests.exceptions.RequestException,
)


@contextmanager
def api_errors(what: str, object_id: str | None, *, mutating: bool = False) -> Iterator[None]:
    """Turn SDK exceptions into recoverkit's tree, naming provider, object and what to do.

    For a ``mutating`` call a failure after the connection was made — a read timeout, a
    connection dropped mid-request, a server error, an unreadable answer — is
    :class:`OutcomeUnknownError` (look the outcome up, never repeat); a connection that was never
    made (refused, connect timeout) is :class:`RequestNotSentError`. Raw ``requests`` exceptions
    are handled too, in case a gateway was built without ``wrap_http_exceptions``.
    """
    try:
        yield
    except NotFoundError:
        raise MissingFactError(
            f"braintree: {what} {object_id!r} not found; check the id and merchant_id",
            provider=PSP,
            object_id=object_id,
        ) from None
    except (AuthenticationError, AuthorizationError) as exc:
        raise ProviderError(
            f"braintree: {what} {object_id!r} refused ({type(exc).__name__}); check key_pairs "
            "and the API key's role permissions",
            provider=PSP,
            object_id=object_id,
        ) from None
    except TooManyRequestsError:
        raise RequestNotSentError(
            f"braintree: rate limited on {what} {object_id!r}; try again later",
            provider=PSP,
            object_id=object_id,
        ) from None
    except (ConnectTimeoutError, requests.exceptions.ConnectTimeout) as exc:
        raise RequestNotSentError(
            f"braintree: could not connect for {what} {object_id!r} ({type(exc).__name__}); "
            "nothing was sent, safe to try again",
            provider=PSP,
            object_id=object_id,
        ) from None
    except _IN_DOUBT as exc:
        if _never_sent(exc):
            raise RequestNotSentError(
                f"braintree: could not connect for {what} {object_id!r} (connection refused); "
                "nothing was sent, safe to try again",
                provider=PSP,
                object_id=object_id,
            ) from None
        cls = OutcomeUnknownError if mutating else MissingFactError
        advice = "look the outcome up before any new attempt" if mutating else "try again later"
        raise cls(
            f"braintree: {what} {object_id!r} failed ({type(exc).__name__}); {advice}",
            provider=PSP,
            object_id=object_id,
        ) from None
    except BraintreeError as exc:
        raise ProviderError(
            f"braintree: {what} {object_id!r} failed: {type(exc).__name__} {exc}",
            provider=PSP,
            object_id=object_id,
        ) from None


class _TtlCache(Generic[_T]):
    """A small thread-safe LRU with a time-to-live; ``clock`` is injectable for tests."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._items: OrderedDict[str, tuple[float, _T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> _T | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or self._clock() - hit[0] > self._ttl:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: str, value: _T) -> None:
        with self._lock:
            self._items[key] = (self._clock(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class CachedLookups:
    """``transaction.find`` / ``subscription.find`` with a short-lived cache (the :class:`Facts`).

    Declined transactions never change, and a subscription's start date never does, so a few
    minutes of reuse is safe for translation; retry decisions read through ``fresh_subscription``.
    """

    def __init__(
        self,
        gateway: Any,
        ttl: float,
        *,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self._transactions: _TtlCache[Any] = _TtlCache(ttl, size, clock)
        self._subscriptions: _TtlCache[Any] = _TtlCache(ttl, size, clock)

    def transaction(self, transaction_id: str) -> Any:
        """The transaction, from the cache or ``transaction.find``."""
        cached = self._transactions.get(transaction_id)
        if cached is not None:
            return cached
        with api_errors("transaction", transaction_id):
            found = self.gateway.transaction.find(transaction_id)
        self._transactions.put(transaction_id, found)
        return found

    def remember_transaction(self, transaction: Any) -> None:
        """Seed the cache with a transaction fetched another way (search, sale)."""
        self._transactions.put(str(transaction.id), transaction)

    def remember(self, response: dict[str, Any]) -> None:
        """Seed the cache with a parsed ``{"transaction": …}`` or ``{"subscription": …}`` answer."""
        if "transaction" in response:
            self.remember_transaction(braintree.Transaction(self.gateway, response["transaction"]))
        elif "subscription" in response:
            found = braintree.Subscription(self.gateway, response["subscription"])
            self._subscriptions.put(str(found.id), found)
        else:
            raise ValueError(f"not a transaction or subscription response: {sorted(response)}")

    def subscription(self, subscription_id: str) -> Any:
        """The subscription, from the cache or ``subscription.find``."""
        cached = self._subscriptions.get(subscription_id)
        if cached is not None:
            return cached
        return self.fresh_subscription(subscription_id)

    def fresh_subscription(self, subscription_id: str) -> Any:
        """``subscription.find`` now, bypassing (and refreshing) the cache."""
        with api_errors("subscription", subscription_id):
            found = self.gateway.subscription.find(subscription_id)
        self._subscriptions.put(subscription_id, found)
        return found
