"""A seeded synthetic world of failed subscription renewals, and an issuer that answers retries.

Every number below is either taken from the research notes (source in the comment) or marked
ASSUMPTION; ``docs/simulator.md`` lists them all. Nothing here knows which policy is running: the
hidden state (when funds arrive, when a block clears, when the card is updated, when the customer
cancels) is drawn once per invoice from the seed, so every policy meets the same population and
the same luck (common random numbers).

Times inside the model are float hours since ``WorldConfig.start`` (numpy arrays); the policies see
timezone-aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from functools import cache

import numpy as np
import numpy.typing as npt

from recoverkit.declines import NormalizedDecline
from recoverkit.sandbox.policies.declines import decline_from_codes

F = npt.NDArray[np.float64]
I = npt.NDArray[np.int64]  # noqa: E741

NETWORKS = ("visa", "mastercard", "amex", "discover")
# ASSUMPTION: US general-purpose card shares by purchase volume, roughly Visa 52 %, Mastercard
# 31 %, Amex 11 %, Discover 6 % (Nilson Report orders of magnitude; not in the research notes).
NETWORK_SHARES = (0.52, 0.31, 0.11, 0.06)
FUNDINGS = ("credit", "debit", "prepaid")
# ASSUMPTION: Visa/Mastercard funding mix; Amex and Discover are credit only.
FUNDING_SHARES = (0.45, 0.50, 0.05)
# ASSUMPTION: a US-heavy merchant; utc offsets are each country's main population zone.
# Families add AU, JP and IN (shares 0 in the default world, so its random draws are unchanged).
COUNTRIES = ("US", "CA", "GB", "DE", "FR", "BR", "AU", "JP", "IN")
COUNTRY_SHARES = (0.60, 0.08, 0.12, 0.10, 0.05, 0.05, 0.0, 0.0, 0.0)
COUNTRY_UTC_OFFSET_HOURS = (-6.0, -5.0, 0.0, 1.0, 1.0, -3.0, 10.0, 9.0, 5.5)
#: With ``zone_spread``: US customers across Eastern/Central/Mountain/Pacific (ASSUMPTION: roughly
#: population shares), Canadians Eastern/Central/Pacific, Australians east/west.
_ZONE_SPREAD = {
    "US": ((-5.0, -6.0, -7.0, -8.0), (0.47, 0.29, 0.07, 0.17)),
    "CA": ((-5.0, -6.0, -8.0), (0.62, 0.20, 0.18)),
    "AU": ((10.0, 8.0), (0.85, 0.15)),
}


class Behaviour(IntEnum):
    """How the hidden issuer state evolves for a decline."""

    FUNDS = 0  # approves while the customer has funds: after a funded payday, until spent
    CLEARS = 1  # a block that lifts at a hidden time (or never)
    TECHNICAL = 2  # issuer/switch down for hours
    LIMIT = 3  # a velocity or credit limit that resets at a hidden time
    NEEDS_UPDATE = 4  # approves only on an updated or new card
    NEVER = 5  # this card will never approve


@dataclass(frozen=True, slots=True)
class DeclineType:
    """A first-failure decline the world can produce: ISO code, share and behaviour."""

    iso: str
    share: float
    behaviour: Behaviour


# Decline mix of first failures. Sources: Adyen, "72 % of declines are insufficient funds or
# do-not-honor" (adyen.com knowledge hub "marginal gains: recovering payments", research/peers.md
# §(b)); Butter, "up to 90 % of failures are soft" (butterpayments.com blog, ibid.). We put 73 % on
# 51 + 05 and 84 % on soft categories. The split inside the soft and hard groups is an ASSUMPTION.
DECLINE_TYPES = (
    DeclineType("51", 0.42, Behaviour.FUNDS),
    DeclineType("05", 0.31, Behaviour.CLEARS),
    DeclineType("91", 0.05, Behaviour.TECHNICAL),
    DeclineType("96", 0.02, Behaviour.TECHNICAL),
    DeclineType("61", 0.04, Behaviour.LIMIT),
    DeclineType("54", 0.08, Behaviour.NEEDS_UPDATE),  # expired card: the account updater helps
    DeclineType("46", 0.02, Behaviour.NEEDS_UPDATE),  # closed account (Visa cat 1: never)
    DeclineType("1A", 0.015, Behaviour.NEEDS_UPDATE),  # authentication required
    DeclineType("41", 0.015, Behaviour.NEVER),
    DeclineType("43", 0.01, Behaviour.NEVER),
    DeclineType("57", 0.01, Behaviour.NEVER),
    DeclineType("59", 0.01, Behaviour.NEVER),
)
_EXPIRED = 5  # index of "54" in DECLINE_TYPES
_NEW_CARD_DECLINE = "05"

PAY_SCHEDULES = ("weekly", "biweekly", "semimonthly", "monthly")
# ASSUMPTION (not in the research notes): roughly the US BLS Current Employment Statistics
# shares of pay-period lengths — biweekly most common, then weekly, semimonthly, monthly.
PAY_SCHEDULE_SHARES = (0.27, 0.43, 0.20, 0.10)


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """The knobs of the synthetic world; the defaults are the "default world" of the docs."""

    invoices: int = 20_000
    seed: int = 0
    #: A Monday; first failures are spread over ``failure_spread_days`` from here.
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    failure_spread_days: int = 56
    dunning_window_days: int = 30
    # --- insufficient funds (ASSUMPTIONS, chosen to be plain, not to favour a policy) ---
    #: Share of insufficient-funds customers who never find the money within the window.
    funds_never: float = 0.25
    #: Chance that a given payday leaves enough money for the renewal.
    payday_funded: float = 0.55
    #: Mean hours the money stays available after a funded payday (then spent elsewhere).
    funds_mean_hours: float = 72.0
    #: Chance of an unscheduled transfer (mean arrival 5 days after the failure).
    transfer_chance: float = 0.2
    # --- other soft declines (ASSUMPTIONS) ---
    generic_clears: float = 0.55
    generic_clear_mean_hours: float = 72.0
    technical_clear_mean_hours: float = 3.0
    # --- approvals ---
    approve_when_clear: float = 0.9
    approve_new_card: float = 0.85
    #: Issuers approve less between 00:00 and 06:00 local (ASSUMPTION: batch and fraud windows).
    night_factor: float = 0.85
    # --- card updates and cancellations (ASSUMPTIONS) ---
    #: Share of expired cards the account updater refreshes (Stripe: "widely in the US", and it
    #: "cannot say which cards qualify" — research/peers.md §4.4).
    updater_refresh: float = 0.5
    updater_mean_hours: float = 36.0
    customer_update_hard: float = 0.25
    customer_update_soft: float = 0.06
    cancel_chance: float = 0.10
    # --- family knobs (the defaults reproduce the default world draw for draw) ---
    country_shares: tuple[float, ...] = COUNTRY_SHARES
    pay_schedule_shares: tuple[float, float, float, float] = PAY_SCHEDULE_SHARES
    #: Shares of ``DECLINE_TYPES`` (normalised).
    decline_shares: tuple[float, ...] = tuple(d.share for d in DECLINE_TYPES)
    #: Multiplies every Mastercard MAC frequency (0 = no MACs).
    mac_rate: float = 1.0
    #: Share of invoices whose time zone the policies are not told (the issuer still has one).
    unknown_time_zone: float = 0.0
    #: Spread multi-zone countries over their zones (else one offset per country).
    zone_spread: bool = False
    #: How generic soft declines ("do not honor") recover, as shares of three shapes: a block
    #: that clears at a hidden time, a steady chance per retry, a chance decaying with time.
    generic_shape_shares: tuple[float, float, float] = (1.0, 0.0, 0.0)
    generic_steady_p: float = 0.2
    generic_decay_p0: float = 0.6
    generic_decay_hours: float = 72.0
    #: Share of limit-exceeded declines that are daily limits (reset at local midnight).
    limit_daily: float = 0.5
    #: Issuers approve this much less between 18:00 and 24:00 local (1 = no effect).
    evening_factor: float = 1.0


@cache
def make_decline(iso: str, network: str, mac: str | None = None) -> NormalizedDecline:
    """The normalized decline the simulated issuer returns (the public helper, cached)."""
    return decline_from_codes(iso, network=network, mac=mac)


# Mastercard MACs on first failures. ASSUMPTION (no public frequency data in the research notes):
# MAC 24-30 on a fifth of insufficient-funds declines, MAC 02 and 03 on some do-not-honor, MAC 01
# on a third of expired cards. MAC meanings: recoverkit/data/mastercard_advice_codes.csv.
_MACS_51 = (("24", 0.06), ("25", 0.06), ("26", 0.03), ("27", 0.02), ("28", 0.01), ("29", 0.01),
            ("30", 0.01), ("02", 0.05))  # fmt: skip
_MACS_05 = (("02", 0.05), ("03", 0.05))
_MACS_54 = (("01", 0.33),)


class World:
    """The population (public attributes) and its hidden issuer state (private arrays)."""

    MAX_ATTEMPTS = 48

    def __init__(self, config: WorldConfig) -> None:
        self.config = c = config
        n = c.invoices
        rng = np.random.default_rng(c.seed)
        self.size = n
        self.network = rng.choice(len(NETWORKS), n, p=NETWORK_SHARES).astype(np.int64)
        funding = rng.choice(len(FUNDINGS), n, p=FUNDING_SHARES).astype(np.int64)
        self.funding = np.where(self.network >= 2, 0, funding)
        countries = np.asarray(c.country_shares, dtype=np.float64)
        self.country = rng.choice(len(COUNTRIES), n, p=countries / countries.sum()).astype(np.int64)
        self.utc_offset_hours = np.asarray(COUNTRY_UTC_OFFSET_HOURS)[self.country]
        # ASSUMPTION: prices are log-normal around a typical consumer subscription (median ~$20).
        cents = np.exp(rng.normal(np.log(2000), 0.7, n))
        self.amount_cents = np.clip(np.round(cents / 100) * 100 - 1, 199, 49_999).astype(np.int64)
        self.first_failure = rng.uniform(0, c.failure_spread_days * 24.0, n)
        shares = np.asarray(c.decline_shares, dtype=np.float64)
        self.decline_type = rng.choice(len(DECLINE_TYPES), n, p=shares / shares.sum())
        self.behaviour = np.array([d.behaviour for d in DECLINE_TYPES], np.int64)[self.decline_type]
        self.mac = self._draw_macs(rng)
        self._draw_hidden_state(rng)
        #: Uniform draws deciding attempt k of invoice i (common random numbers across policies).
        self.uniforms = rng.random((n, self.MAX_ATTEMPTS))
        self._draw_family_extras(rng)

    # --- population ------------------------------------------------------------------------

    def _draw_macs(self, rng: np.random.Generator) -> list[str | None]:
        macs: list[str | None] = [None] * self.size
        draws = rng.random(self.size)
        iso = [DECLINE_TYPES[t].iso for t in self.decline_type]
        table = {"51": _MACS_51, "05": _MACS_05, "54": _MACS_54}
        for i in np.flatnonzero(self.network == 1):
            cumulative = 0.0
            for mac, share in table.get(iso[i], ()):
                cumulative += share * self.config.mac_rate
                if draws[i] < cumulative:
                    macs[i] = mac
                    break
        return macs

    def _draw_hidden_state(self, rng: np.random.Generator) -> None:
        c, n, fail = self.config, self.size, self.first_failure
        window = c.dunning_window_days * 24.0
        behaviour = self.behaviour
        inf = np.inf
        # Soft blocks clear at a hidden time (or never).
        clear = np.full(n, inf)
        generic = behaviour == Behaviour.CLEARS
        clears = generic & (rng.random(n) < c.generic_clears)
        clear[clears] = fail[clears] + rng.exponential(c.generic_clear_mean_hours, n)[clears]
        tech = behaviour == Behaviour.TECHNICAL
        clear[tech] = fail[tech] + rng.exponential(c.technical_clear_mean_hours, n)[tech]
        limit = behaviour == Behaviour.LIMIT
        # Half are daily limits (reset at the next local midnight), half reset within ~3 weeks.
        midnight = (np.floor((fail + self.utc_offset_hours) / 24) + 1) * 24 - self.utc_offset_hours
        later = fail + rng.uniform(48, 500, n)
        clear[limit] = np.where(rng.random(n) < c.limit_daily, midnight, later)[limit]
        self._clear = clear
        self._draw_funds(rng)
        # Card updates: the account updater refreshes some expired cards; customers update others.
        update = np.full(n, inf)
        expired = self.decline_type == _EXPIRED
        by_updater = expired & (rng.random(n) < c.updater_refresh)
        update[by_updater] = fail[by_updater] + rng.exponential(c.updater_mean_hours, n)[by_updater]
        hard = behaviour >= Behaviour.NEEDS_UPDATE
        chance = np.where(hard, c.customer_update_hard, c.customer_update_soft)
        by_customer = ~by_updater & (rng.random(n) < chance)
        update[by_customer] = fail[by_customer] + rng.uniform(12, window, n)[by_customer]
        self.update_at = update
        self.update_by_updater = by_updater
        cancel = np.full(n, inf)
        cancels = rng.random(n) < c.cancel_chance
        cancel[cancels] = fail[cancels] + rng.uniform(0, window, n)[cancels]
        self.cancel_at = cancel

    def _draw_funds(self, rng: np.random.Generator) -> None:
        """Funds windows for insufficient-funds invoices: [payday arrival, + time until spent)."""
        c, n = self.config, self.size
        days_ahead = c.dunning_window_days + 2
        pay = np.asarray(c.pay_schedule_shares, dtype=np.float64)
        schedule = rng.choice(len(PAY_SCHEDULES), n, p=pay / pay.sum())
        local_fail = self.first_failure + self.utc_offset_hours
        day0 = np.floor(local_fail / 24).astype(np.int64)
        days = day0[:, None] + np.arange(days_ahead)[None, :]
        weekday = days % 7  # day 0 is a Monday
        dates = np.datetime64(self.config.start.date()) + days.astype("timedelta64[D]")
        month_start = dates.astype("datetime64[M]")
        day_of_month = (dates - month_start.astype("datetime64[D]")).astype(np.int64) + 1
        next_month = (month_start + 1).astype("datetime64[D]")
        last = next_month - 1
        last_weekday = (last - np.datetime64("2026-01-05")).astype(np.int64) % 7
        last_business = last - np.where(last_weekday == 6, 2, np.where(last_weekday == 5, 1, 0))
        phase = rng.integers(0, 2, n)[:, None]
        is_payday = np.select(
            [
                schedule[:, None] == 0,
                schedule[:, None] == 1,
                schedule[:, None] == 2,
            ],
            [
                weekday == 4,
                (weekday == 4) & (((days // 7) + phase) % 2 == 0),
                (day_of_month == 1) | (day_of_month == 15),
            ],
            default=dates == last_business,
        )
        # Direct deposits post early morning local time (ASSUMPTION: 02:00-06:00).
        arrival = days * 24.0 + rng.uniform(2, 6, (n, days_ahead)) - self.utc_offset_hours[:, None]
        funded = is_payday & (rng.random((n, days_ahead)) < c.payday_funded)
        funded &= arrival > self.first_failure[:, None]
        transfer = rng.random(n) < c.transfer_chance
        t_at = self.first_failure + rng.exponential(120.0, n)
        starts = np.concatenate([np.where(funded, arrival, np.inf), t_at[:, None]], axis=1)
        starts[:, -1] = np.where(transfer, starts[:, -1], np.inf)
        never = rng.random(n) < c.funds_never
        starts[never] = np.inf
        not_funds = self.behaviour != Behaviour.FUNDS
        starts[not_funds] = np.inf
        spend = 6.0 + rng.exponential(c.funds_mean_hours, starts.shape)
        self._funds_start = starts
        self._funds_end = starts + spend

    def _draw_family_extras(self, rng: np.random.Generator) -> None:
        """Family knobs drawn after everything else (the default world is unchanged by them)."""
        c, n = self.config, self.size
        #: True where the policies are told the customer's UTC offset.
        self.time_zone_known = np.ones(n, dtype=bool)
        if c.unknown_time_zone > 0:
            self.time_zone_known = rng.random(n) >= c.unknown_time_zone
        if c.zone_spread:
            for code, (offsets, shares) in _ZONE_SPREAD.items():
                members = np.flatnonzero(self.country == COUNTRIES.index(code))
                picked = rng.choice(len(offsets), len(members), p=np.asarray(shares))
                # Only the issuer's clock moves: the hidden funds windows and daily limits keep
                # the country offset they were drawn with (at most 3 h apart).
                self.utc_offset_hours = self.utc_offset_hours.copy()
                self.utc_offset_hours[members] = np.asarray(offsets)[picked]
        #: 0 = clears at a hidden time, 1 = steady chance, 2 = decaying chance (generic declines).
        self.generic_shape = np.zeros(n, dtype=np.int64)
        if c.generic_shape_shares != (1.0, 0.0, 0.0):
            shape = np.asarray(c.generic_shape_shares, dtype=np.float64)
            self.generic_shape = rng.choice(3, n, p=shape / shape.sum()).astype(np.int64)

    # --- time helpers ------------------------------------------------------------------------

    def to_datetime(self, hours: float) -> datetime:
        """Model hours to a timezone-aware datetime."""
        return self.config.start + timedelta(hours=float(hours))

    def to_hours(self, when: datetime) -> float:
        """A timezone-aware datetime to model hours."""
        return (when - self.config.start) / timedelta(hours=1)

    def deadline(self, i: int) -> float:
        """The end of invoice ``i``'s dunning window, in model hours."""
        return float(self.first_failure[i]) + self.config.dunning_window_days * 24.0

    # --- the issuer ----------------------------------------------------------------------------

    def first_decline(self, i: int) -> NormalizedDecline:
        """The decline of invoice ``i``'s failed renewal."""
        iso = DECLINE_TYPES[self.decline_type[i]].iso
        return make_decline(iso, NETWORKS[self.network[i]], self.mac[i])

    def retry_decline(self, i: int, *, new_card: bool) -> NormalizedDecline:
        """What a declined retry returns: the same answer on the old card, a generic one on a new
        card. A MAC 24-30 delay is not repeated (ASSUMPTION: issuers send it on the first)."""
        network = NETWORKS[self.network[i]]
        if new_card:
            return make_decline(_NEW_CARD_DECLINE, network)
        mac = self.mac[i]
        keep = mac if mac in {"01", "02", "03"} else None
        return make_decline(DECLINE_TYPES[self.decline_type[i]].iso, network, keep)

    def approval_probability(self, idx: I, at: F, new_card: npt.NDArray[np.bool_]) -> F:
        """P(approve) for attempts on invoices ``idx`` at model hours ``at`` (vectorised)."""
        c = self.config
        behaviour = self.behaviour[idx]
        clear = self._clear[idx]
        funds = (
            (self._funds_start[idx] <= at[:, None]) & (at[:, None] < self._funds_end[idx])
        ).any(axis=1)
        p = np.select(
            [
                behaviour == Behaviour.FUNDS,
                (behaviour == Behaviour.CLEARS)
                | (behaviour == Behaviour.TECHNICAL)
                | (behaviour == Behaviour.LIMIT),
            ],
            [
                np.where(funds, c.approve_when_clear, 0.02),
                np.where(at >= clear, c.approve_when_clear, 0.03),
            ],
            default=0.0,
        )
        generic = behaviour == Behaviour.CLEARS
        shape = self.generic_shape[idx]
        since = np.maximum(at - self.first_failure[idx], 0.0)
        p = np.where(generic & (shape == 1), c.generic_steady_p, p)
        decay = c.generic_decay_p0 * np.exp(-since / c.generic_decay_hours)
        p = np.where(generic & (shape == 2), decay, p)
        p = np.where(new_card, c.approve_new_card, p)
        local_hour = np.mod(at + self.utc_offset_hours[idx], 24.0)
        p = np.where(local_hour < 6.0, p * c.night_factor, p)
        return np.where(local_hour >= 18.0, p * c.evening_factor, p)
