"""``learned``: a scikit-learn model of P(approval) choosing among candidate retry times.

The model (:class:`SuccessModel`, gradient-boosted trees) scores an attempt from its decline,
card and timing features. For an invoice in dunning the policy scores a fixed set of candidate
times — soon (1, 3, 8 hours), 07:00 local on each of the next 14 days, right after a card update
— and picks the one with the best expected recovery: ``P(approve at t) x exp(-daily_discount x
days until t)`` (the discount stands for customers cancelling and for money later being worth less).
It stops when no candidate reaches ``min_probability``, after ``max_retries`` retries, and on
hard declines until the card changes (no history of those can exist: the guard stops them).

Training data is any history of retries, successes and failures (:class:`TrainingExample`); the
simulator produces it with :class:`ExplorationPolicy` (random candidate times), the sandbox will
from its store. Models are saved with :mod:`pickle`: load only files you wrote yourself — ``load``
refuses a file whose HMAC tag (keyed by a local secret, :mod:`recoverkit.modelkey`) does not match.
"""

from __future__ import annotations

import math
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from recoverkit import modelkey
from recoverkit.declines import DeclineCategory, MacAction, ResponseType, mastercard_advice
from recoverkit.sandbox.policies.base import (
    PolicyContext,
    Proposal,
    Retry,
    Stop,
    TrainingExample,
)

__all__ = [
    "FEATURES",
    "ExplorationPolicy",
    "LearnedPolicy",
    "ModelMetrics",
    "SuccessModel",
    "TrainingExample",
    "train_success_model",
]

F = npt.NDArray[np.float64]

MODEL_FORMAT = "recoverkit-success-model/1"
FEATURES = (
    "category",
    "network",
    "funding",
    "mac_delay_hours",
    "hours_since_first_failure",
    "hours_since_last_attempt",
    "retries_made",
    "local_hour",
    "local_weekday",
    "local_day_of_month",
    "local_days_to_month_end",
    "payment_method_changed",
    "hours_since_update",
)
_CATEGORIES = {c: i for i, c in enumerate(DeclineCategory)}
_NETWORKS = {"visa": 0, "mastercard": 1, "amex": 2, "discover": 3}
_FUNDINGS = {"credit": 0, "debit": 1, "prepaid": 2}
_SOON_HOURS = (1.0, 3.0, 8.0)
_MORNING_DAYS = 14
_MORNING_HOUR = 7.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _hours(when: datetime) -> float:
    return (when - _EPOCH) / timedelta(hours=1)


def _context_row(context: PolicyContext) -> list[float]:
    """The per-invoice scalars the features are built from (times in epoch hours)."""
    decline = context.last_decline
    advice = mastercard_advice(decline.mastercard_advice_code or "")
    delays = advice is not None and advice.action is MacAction.DELAY
    mac_delay = advice.delay if advice is not None and delays else None
    update = context.last_update
    offset = context.local_offset(context.now)
    if offset is None:
        # Unknown local time: the candidates' "07:00" is the first failure's time of day.
        first = context.first_failure_at
        anchor = _MORNING_HOUR - (first.hour + first.minute / 60.0)
    else:
        anchor = offset / timedelta(hours=1)
    return [
        _CATEGORIES[decline.category],
        _NETWORKS.get((context.network or "").lower(), 4),
        _FUNDINGS.get((context.funding or "").lower(), 3),
        mac_delay / timedelta(hours=1) if mac_delay else 0.0,
        _hours(context.first_failure_at),
        _hours(context.last_attempt.at),
        context.retries_made,
        offset / timedelta(hours=1) if offset is not None else math.nan,
        float(context.payment_method_changed_since_decline),
        _hours(update.at) if update else math.nan,
        _hours(context.now),
        _hours(context.deadline),
        anchor,
    ]


def _features(rows: F, candidates: F) -> F:
    """Feature matrix for ``candidates`` (shape [M, C], epoch hours) of the M context rows."""
    m, c = candidates.shape
    out = np.empty((m, c, len(FEATURES)))
    for j in range(4):
        out[:, :, j] = rows[:, j, None]
    out[:, :, 4] = candidates - rows[:, 4, None]
    out[:, :, 5] = candidates - rows[:, 5, None]
    out[:, :, 6] = rows[:, 6, None]
    # Unknown local time: hour and weekday are -1 (a value of their own for the trees); the day
    # of the month is taken from the UTC date, wrong by at most a day.
    known = np.isfinite(rows[:, 7, None])
    local = candidates + np.where(known, rows[:, 7, None], 0.0)
    safe_local = np.where(np.isfinite(local), local, 0.0)
    out[:, :, 7] = np.mod(safe_local, 24.0)
    days = np.floor(safe_local / 24.0).astype(np.int64)
    out[:, :, 8] = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    dates = days.astype("datetime64[D]")
    month = dates.astype("datetime64[M]")
    out[:, :, 9] = (dates - month.astype("datetime64[D]")).astype(np.int64) + 1
    out[:, :, 10] = ((month + 1).astype("datetime64[D]") - dates).astype(np.int64) - 1
    out[:, :, 7:9] = np.where(known[:, :, None], out[:, :, 7:9], -1.0)
    out[:, :, 11] = rows[:, 8, None]
    since_update = candidates - rows[:, 9, None]
    out[:, :, 12] = np.where(np.isnan(since_update), -1.0, since_update)
    return out.reshape(m * c, len(FEATURES))


def _candidates(rows: F) -> F:
    """Candidate attempt times (epoch hours, NaN = none) for each context row."""
    now, offset = rows[:, 10], rows[:, 12]
    soon = now[:, None] + np.asarray(_SOON_HOURS)[None, :]
    local_midnight = np.floor((now + offset) / 24.0) * 24.0 - offset
    mornings = (
        local_midnight[:, None] + _MORNING_HOUR + 24.0 * np.arange(_MORNING_DAYS + 1)[None, :]
    )
    after_update = np.where(rows[:, 8] > 0, np.maximum(now, rows[:, 9] + 0.25), np.nan)
    after_mac = np.where(rows[:, 3] > 0, rows[:, 5] + rows[:, 3], np.nan)
    cands = np.concatenate([soon, mornings, after_update[:, None], after_mac[:, None]], axis=1)
    valid = (cands > now[:, None]) & (cands <= rows[:, 11, None])
    valid &= ~((rows[:, 3, None] > 0) & (cands < rows[:, 5, None] + rows[:, 3, None]))
    return np.where(valid, cands, np.nan)


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    """Held-out quality of a fitted :class:`SuccessModel`."""

    train_rows: int
    test_rows: int
    test_approval_rate: float
    auc: float
    log_loss: float
    #: Log-loss of always predicting the training approval rate (the model must beat it).
    constant_log_loss: float
    brier: float
    #: Expected calibration error over ten equal-width probability bins.
    calibration_error: float
    #: (mean predicted, observed rate, rows) per non-empty bin.
    calibration: tuple[tuple[float, float, int], ...]


class SuccessModel:
    """P(approval) of a retry at a given time, from decline, card and timing features."""

    def __init__(self, estimator: Any | None = None, *, seed: int = 0) -> None:
        self.estimator = estimator or HistGradientBoostingClassifier(
            max_iter=150,
            learning_rate=0.1,
            max_leaf_nodes=31,
            categorical_features=[0, 1, 2],
            random_state=seed,
        )

    @staticmethod
    def dataset(examples: Sequence[TrainingExample]) -> tuple[F, npt.NDArray[np.int64]]:
        """The feature matrix and labels of ``examples``."""
        if not examples:
            return np.empty((0, len(FEATURES))), np.empty(0, dtype=np.int64)
        rows = np.asarray([_context_row(e.context) for e in examples], dtype=np.float64)
        at = np.asarray([[_hours(e.at)] for e in examples])
        labels = np.asarray([e.approved for e in examples], dtype=np.int64)
        return _features(rows, at), labels

    def fit(self, examples: Sequence[TrainingExample]) -> SuccessModel:
        """Fit on ``examples`` (needs both approvals and declines)."""
        x, y = self.dataset(examples)
        if len(set(y.tolist())) < 2:
            raise ValueError("training needs both approved and declined retries")
        self.estimator.fit(x, y)
        return self

    def predict(self, features: F) -> F:
        """P(approval) for each feature row."""
        proba: F = self.estimator.predict_proba(features)[:, 1]
        return proba

    def evaluate(self, examples: Sequence[TrainingExample], base_rate: float) -> ModelMetrics:
        """Held-out metrics on ``examples``; ``base_rate`` is the training approval rate."""
        x, y = self.dataset(examples)
        p = np.clip(self.predict(x), 1e-6, 1 - 1e-6)
        constant = np.full(len(y), min(max(base_rate, 1e-6), 1 - 1e-6))
        bins = np.minimum((p * 10).astype(np.int64), 9)
        calibration = []
        ece = 0.0
        for b in range(10):
            mask = bins == b
            if mask.any():
                mean_p, observed = float(p[mask].mean()), float(y[mask].mean())
                calibration.append((mean_p, observed, int(mask.sum())))
                ece += mask.mean() * abs(mean_p - observed)
        return ModelMetrics(
            train_rows=0,
            test_rows=len(y),
            test_approval_rate=float(y.mean()),
            auc=float(roc_auc_score(y, p)),
            log_loss=float(log_loss(y, p, labels=[0, 1])),
            constant_log_loss=float(log_loss(y, constant, labels=[0, 1])),
            brier=float(brier_score_loss(y, p)),
            calibration_error=float(ece),
            calibration=tuple(calibration),
        )

    def save(self, path: Path) -> None:
        """Write the model to ``path`` (pickle, with a format tag and the sklearn version),
        behind an HMAC tag keyed by this machine's model key (:mod:`recoverkit.modelkey`)."""
        payload = {"format": MODEL_FORMAT, "sklearn": sklearn.__version__, "model": self}
        path.write_bytes(modelkey.sign(pickle.dumps(payload)))

    @classmethod
    def load(cls, path: Path) -> SuccessModel:
        """Read a model written by :meth:`save`. Pickle runs code, so the HMAC tag is checked
        first: a file not written with this machine's model key is refused unread."""
        data = modelkey.verify(path.read_bytes(), str(path))
        payload = pickle.loads(data)  # noqa: S301 - integrity-checked above
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path} is not a recoverkit success model ({MODEL_FORMAT})")
        model = payload["model"]
        if not isinstance(model, cls):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a SuccessModel")
        return model


def train_success_model(
    examples: Sequence[TrainingExample], *, holdout: float = 0.25, seed: int = 0
) -> tuple[SuccessModel, ModelMetrics]:
    """Fit a model on a random ``1 - holdout`` of the invoices; metrics on the rest.

    The split is by invoice, so no invoice has retries on both sides.
    """
    if not 0 < holdout < 1:
        raise ValueError("holdout must be between 0 and 1")
    invoices = sorted({e.context.invoice_id for e in examples})
    rng = np.random.default_rng(seed)
    test_ids = set(rng.choice(invoices, int(len(invoices) * holdout), replace=False).tolist())
    train = [e for e in examples if e.context.invoice_id not in test_ids]
    test = [e for e in examples if e.context.invoice_id in test_ids]
    if not train or not test:
        raise ValueError("not enough invoices to hold some out")
    model = SuccessModel(seed=seed).fit(train)
    base_rate = sum(e.approved for e in train) / len(train)
    metrics = model.evaluate(test, base_rate)
    return model, _with_train_rows(metrics, len(train))


def _with_train_rows(metrics: ModelMetrics, rows: int) -> ModelMetrics:
    from dataclasses import replace

    return replace(metrics, train_rows=rows)


class LearnedPolicy:
    """The ``learned`` policy (see the module docstring)."""

    name = "learned"

    def __init__(
        self,
        model: SuccessModel,
        *,
        max_retries: int = 4,
        min_probability: float = 0.05,
        daily_discount: float = 0.01,
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        self.min_probability = min_probability
        self.daily_discount = daily_discount

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """The best-scoring candidate time, or stop."""
        return self.next_attempts([context])[0]

    def next_attempts(self, contexts: Sequence[PolicyContext]) -> list[Proposal]:
        """Score every candidate of every context in one model call."""
        proposals: list[Proposal | None] = [None] * len(contexts)
        todo = []
        for i, context in enumerate(contexts):
            decline = context.last_decline
            if context.retries_made >= self.max_retries:
                proposals[i] = Stop(f"learned: {self.max_retries} retries made")
            elif (
                decline.response_type is ResponseType.HARD
                and not context.payment_method_changed_since_decline
            ):
                # The guard never lets these through, so no history can teach the model about
                # them: stop here rather than trust an extrapolation.
                proposals[i] = Stop(
                    f"learned: hard decline ({decline.category.value}); waiting for a new card",
                    awaiting_payment_method=True,
                )
            else:
                todo.append(i)
        if todo:
            rows = np.asarray([_context_row(contexts[i]) for i in todo], dtype=np.float64)
            cands = _candidates(rows)
            valid = ~np.isnan(cands)
            filled = np.where(valid, cands, rows[:, 10, None] + 1.0)
            p = self.model.predict(_features(rows, filled)).reshape(cands.shape)
            p = np.where(valid, p, -1.0)
            wait_days = (filled - rows[:, 10, None]) / 24.0
            score = p * np.exp(-self.daily_discount * wait_days)
            best = np.argmax(score, axis=1)
            for k, i in enumerate(todo):
                b = best[k]
                if p[k, b] < self.min_probability:
                    proposals[i] = Stop(
                        f"learned: no time before the deadline reaches "
                        f"{self.min_probability:.0%} predicted success",
                        awaiting_payment_method=True,
                    )
                else:
                    at = _EPOCH + timedelta(hours=float(cands[k, b]))
                    proposals[i] = Retry(at, f"learned: P(approve)={p[k, b]:.2f}")
        return [p for p in proposals if p is not None]


class ExplorationPolicy:
    """Random times from the learned policy's candidate set: varied training data.

    Deterministic per (seed, invoice, retry), so a seeded world gives the same history.
    """

    name = "exploration"

    def __init__(self, *, seed: int = 0, max_retries: int = 6) -> None:
        self.seed = seed
        self.max_retries = max_retries

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """A uniformly random valid candidate time."""
        return self.next_attempts([context])[0]

    def next_attempts(self, contexts: Sequence[PolicyContext]) -> list[Proposal]:
        """Random candidates for many invoices (candidate times computed in one batch)."""
        if not contexts:
            return []
        all_cands = _candidates(np.asarray([_context_row(c) for c in contexts], np.float64))
        proposals: list[Proposal] = []
        for context, row in zip(contexts, all_cands, strict=True):
            cands = row[~np.isnan(row)]
            if context.retries_made >= self.max_retries:
                proposals.append(Stop(f"exploration: {self.max_retries} retries made"))
            elif not len(cands):
                proposals.append(Stop("exploration: no candidate before the deadline"))
            else:
                key = f"{self.seed}:{context.invoice_id}:{context.retries_made}".encode()
                pick = float(cands[zlib.crc32(key) % len(cands)])
                proposals.append(Retry(_EPOCH + timedelta(hours=pick), "exploration: random"))
        return proposals
