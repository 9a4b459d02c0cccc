"""Card-network retry rules: may a declined card be retried, and not before when?

:func:`may_retry` is pure: it reads no clock and no storage. It answers in this order, first match
wins (sources in ``docs/declines-and-rules.md``):

1. **Never** — Visa category 1 (on other networks: an ISO code Visa puts in category 1),
   Mastercard MAC 03/21, advice ``do_not_try_again``, lost/stolen, revoked by the cardholder,
   suspected fraud, an invalid request. A payment-method change does not lift these; only a
   different payment method the customer supplied does (the rules are per credential).
2. **After a payment-method change** — MAC 01, advice ``confirm_card_data``, Visa category 3,
   invalid card data or account, not permitted, authentication required (never off-session).
3. **Not before** a decline-specific delay — MAC 24-30, MAC 02, a PSP block — and the network
   budgets: Visa (and Amex, Discover, unknown) at most N reattempts per rolling 30 days;
   Mastercard at most 10 declines per rolling 24 h and 35 per 30 days. The latest time wins.
4. Otherwise **retry**.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from recoverkit.declines import (
    Advice,
    DeclineCategory,
    MacAction,
    NormalizedDecline,
    mac_code,
    mastercard_advice,
    visa_category,
)

VISA_MAX_REATTEMPTS_PER_30_DAYS = 20
"""Visa's limit since 25 May 2025; some acquirers (and Stripe's guard) still enforce 15."""

_DAY = timedelta(days=1)
_MASTERCARD = frozenset({"mastercard", "master", "master_card", "mc"})

_NEVER_CATEGORIES = {
    DeclineCategory.LOST_STOLEN: "card reported lost or stolen: never retry",
    DeclineCategory.REVOKED_BY_CARDHOLDER: "cardholder revoked the authorisation: never retry",
    DeclineCategory.FRAUD_SUSPECTED: "suspected fraud: no automatic retry",
    DeclineCategory.REQUEST_INVALID: "invalid request: fix or reconcile it, don't retry it",
}
_AFTER_CHANGE_CATEGORIES = {
    DeclineCategory.CARD_DATA_INVALID: "card data invalid: retry only after the card is updated",
    DeclineCategory.ACCOUNT_INVALID: "account invalid: retry only after the card is updated",
    DeclineCategory.NOT_PERMITTED: "not permitted for this card: retry only with a new card",
    DeclineCategory.AUTHENTICATION_REQUIRED: (
        "authentication required: the customer must authenticate on-session, never off-session"
    ),
}


class Verdict(StrEnum):
    """What a retry policy may do with a declined card."""

    RETRY = "retry"
    NOT_BEFORE = "not_before"
    AFTER_PAYMENT_METHOD_CHANGE = "after_payment_method_change"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class CardAttempt:
    """One past charge attempt on the card being considered (timezone-aware ``at``)."""

    at: datetime
    network: str | None
    approved: bool
    #: False when the PSP blocked the charge before any network saw it: no budget is used.
    sent_to_network: bool = True
    amount: Decimal | None = None
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkRules:
    """Network retry budgets and back-offs; a budget may be set below the network's, never above.

    ``visa_reattempts_per_30_days`` defaults to 15: Visa raised its limit to 20 on 25 May 2025, but
    some acquirers, and Stripe's own guard, still stop at 15. The same cap applies to Amex, Discover
    and unknown networks, which publish no programme of their own.
    """

    visa_reattempts_per_30_days: int = 15
    mastercard_declines_per_24h: int = 10
    mastercard_declines_per_30_days: int = 35
    #: Wait after a PSP block (Stripe's excessive-retry block decays after a few days).
    psp_block_backoff: timedelta = timedelta(days=3)
    #: Wait after MAC 02 "try again later" (Airwallex: recycle 72 hours later).
    mastercard_mac_02_backoff: timedelta = timedelta(hours=72)

    def __post_init__(self) -> None:
        _check_range("visa_reattempts_per_30_days", self.visa_reattempts_per_30_days, 20)
        _check_range("mastercard_declines_per_24h", self.mastercard_declines_per_24h, 10)
        _check_range("mastercard_declines_per_30_days", self.mastercard_declines_per_30_days, 35)
        for name in ("psp_block_backoff", "mastercard_mac_02_backoff"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"NetworkRules.{name} must not be negative")


def _check_range(name: str, value: int, network_max: int) -> None:
    if not 1 <= value <= network_max:
        raise ValueError(f"NetworkRules.{name} must be between 1 and {network_max}, got {value}")


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """The answer of :func:`may_retry`; ``not_before`` is set only for ``NOT_BEFORE``."""

    verdict: Verdict
    not_before: datetime | None
    #: A short sentence naming the rule, e.g. "Mastercard MAC 03: do not try again".
    reason: str


def may_retry(
    decline: NormalizedDecline,
    history: Sequence[CardAttempt],
    *,
    now: datetime,
    rules: NetworkRules = NetworkRules(),
    payment_method_changed_since_decline: bool = False,
    new_payment_method_from_customer: bool = False,
    amount: Decimal | None = None,
) -> RetryDecision:
    """May the card behind ``decline`` be charged again automatically, and not before when?

    ``history`` is every attempt on the credential to be charged (the decline itself included);
    budgets count its declines that reached the network. ``amount`` is the amount of the next
    attempt: when given, the 30-day budgets count only attempts of that amount (or of unknown
    amount), as Visa and Mastercard match on it. A payment-method change (an account-updater
    refresh, new card data) lifts the "after a payment-method change" verdicts and the decline's
    own delays, never a "never": a refreshed card is still the card the issuer or the
    cardholder stopped. ``new_payment_method_from_customer`` — the customer supplied a
    *different* payment method since the decline — lifts every decline-specific rule, "never"
    included, since the rules bind the declined credential; ``history`` must then be the new
    credential's, and its budgets still apply.
    """
    if now.tzinfo is None:
        raise ValueError("may_retry needs a timezone-aware `now`")
    network = _network(decline, history)
    if not new_payment_method_from_customer and (reason := _never_reason(decline, network)):
        return RetryDecision(Verdict.NEVER, None, reason)

    waits: list[tuple[datetime, str]] = []
    if not (payment_method_changed_since_decline or new_payment_method_from_customer):
        if reason := _after_change_reason(decline):
            return RetryDecision(Verdict.AFTER_PAYMENT_METHOD_CHANGE, None, reason)
        waits += _decline_delays(decline, _decline_time(history, now), rules)
    waits += _budget_waits(network, history, now, rules, amount)

    pending = [wait for wait in waits if wait[0] > now]
    if pending:
        not_before, reason = max(pending, key=lambda wait: wait[0])
        return RetryDecision(Verdict.NOT_BEFORE, not_before, reason)
    return RetryDecision(Verdict.RETRY, None, f"within the {_label(network)} retry rules")


def _network(decline: NormalizedDecline, history: Sequence[CardAttempt]) -> str:
    named = decline.network or next((a.network for a in reversed(history) if a.network), None)
    network = (named or "unknown").strip().lower().replace(" ", "_").replace("-", "_")
    return "mastercard" if network in _MASTERCARD else network


def _label(network: str) -> str:
    return {"visa": "Visa", "mastercard": "Mastercard"}.get(network, network)


def _visa_category(decline: NormalizedDecline) -> int | None:
    # Other networks publish no categories; Visa's are applied by meaning to every network
    # (research §7.3 for Amex/Discover; Mastercard's own pre-MAC guidance said the same for
    # pick-up, invalid account, no such issuer and lost/stolen).
    if decline.visa_category is not None:
        return decline.visa_category
    return visa_category(decline.iso_response_code) if decline.iso_response_code else None


def _mac_action(decline: NormalizedDecline) -> MacAction | None:
    advice = mastercard_advice(decline.mastercard_advice_code or "")
    return advice.action if advice else None


def _never_reason(decline: NormalizedDecline, network: str) -> str | None:
    mac = mac_code(decline.mastercard_advice_code)
    if _mac_action(decline) is MacAction.NEVER:
        meaning = "do not try again" if mac == "03" else "cardholder cancelled the payment"
        return f"Mastercard MAC {mac}: {meaning}"
    if decline.advice is Advice.DO_NOT_TRY_AGAIN:
        return "issuer advice do_not_try_again: never retry"
    if _visa_category(decline) == 1:
        by = "" if network == "visa" else f" (applied by meaning to {_label(network)})"
        iso = f" (ISO {decline.iso_response_code})" if decline.iso_response_code else ""
        return f"Visa category 1{iso}: the issuer will never approve{by}"
    return _NEVER_CATEGORIES.get(decline.category)


def _after_change_reason(decline: NormalizedDecline) -> str | None:
    if _mac_action(decline) is MacAction.AFTER_PAYMENT_METHOD_CHANGE:
        return "Mastercard MAC 01: new account information available; retry after the update"
    if decline.advice is Advice.CONFIRM_CARD_DATA:
        return "issuer advice confirm_card_data: retry only after the card data is updated"
    if _visa_category(decline) == 3:
        return "Visa category 3: revalidate the card data before reattempting"
    return _AFTER_CHANGE_CATEGORIES.get(decline.category)


def _decline_time(history: Sequence[CardAttempt], now: datetime) -> datetime:
    return max((a.at for a in history if not a.approved), default=now)


def _decline_delays(
    decline: NormalizedDecline, declined_at: datetime, rules: NetworkRules
) -> list[tuple[datetime, str]]:
    waits = []
    if not decline.sent_to_network or decline.category is DeclineCategory.BLOCKED_BY_PSP:
        reason = f"blocked by the PSP before the network: back off {_span(rules.psp_block_backoff)}"
        waits.append((declined_at + rules.psp_block_backoff, reason))
    advice = mastercard_advice(decline.mastercard_advice_code or "")
    if advice and advice.action is MacAction.DELAY and advice.delay:
        reason = f"Mastercard MAC {advice.code}: {advice.meaning.lower()}"
        waits.append((declined_at + advice.delay, reason))
    elif advice and advice.action is MacAction.RETRY_LATER:
        backoff = rules.mastercard_mac_02_backoff
        reason = f"Mastercard MAC {advice.code}: try again later (back off {_span(backoff)})"
        waits.append((declined_at + backoff, reason))
    return waits


def _span(delta: timedelta) -> str:
    hours = delta / timedelta(hours=1)
    return f"{hours / 24:g} days" if hours % 24 == 0 else f"{hours:g} hours"


def _budget_waits(
    network: str,
    history: Sequence[CardAttempt],
    now: datetime,
    rules: NetworkRules,
    amount: Decimal | None,
) -> list[tuple[datetime, str]]:
    declines = sorted(a.at for a in history if not a.approved and a.sent_to_network)
    same_amount = sorted(
        a.at
        for a in history
        if not a.approved and a.sent_to_network and _same_amount(a.amount, amount)
    )
    if network == "mastercard":
        return [
            *_window_wait(
                declines,
                now,
                _DAY,
                rules.mastercard_declines_per_24h - 1,
                f"Mastercard: at most {rules.mastercard_declines_per_24h} declines per 24 hours",
            ),
            *_window_wait(
                same_amount,
                now,
                30 * _DAY,
                rules.mastercard_declines_per_30_days - 1,
                f"Mastercard: at most {rules.mastercard_declines_per_30_days} declines per 30 days",
            ),
        ]
    # The next attempt after k declines in the window is reattempt number k (the first was the
    # original attempt), so k may reach the reattempt limit itself.
    label = "Visa" if network == "visa" else f"{_label(network)} (Visa-like cap)"
    return _window_wait(
        same_amount,
        now,
        30 * _DAY,
        rules.visa_reattempts_per_30_days,
        f"{label}: at most {rules.visa_reattempts_per_30_days} reattempts per 30 days",
    )


def _same_amount(attempt: Decimal | None, wanted: Decimal | None) -> bool:
    return wanted is None or attempt is None or attempt == wanted


def _window_wait(
    times: Iterable[datetime], now: datetime, window: timedelta, allowed: int, reason: str
) -> list[tuple[datetime, str]]:
    """When at most ``allowed`` of ``times`` remain in the rolling ``window`` ending at a retry."""
    inside = sorted(t for t in times if t > now - window)
    excess = len(inside) - allowed
    if excess <= 0:
        return []
    # The retry may go once the `excess` oldest counted attempts have left the window.
    return [(inside[excess - 1] + window, reason)]
