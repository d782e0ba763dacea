"""Realistic, seeded sample data for ``guanxi data sample``.

Customers are simulated month by month with numpy, all customers of a block of
:data:`BLOCK_SIZE` together, and streamed to Parquet (or CSV) one chunk of customers at a
time, so memory stays flat however many customers are asked for. The generating story, with
every parameter, is told in ``docs/sample-data.md``; the numbers live in the constants below.

Each block draws from its own ``numpy.random.Generator`` seeded with ``(seed, block index)``, so
the same arguments give byte-identical files and the content does not depend on the chunk size.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final, Literal, TypeAlias

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import TextColumn

from features.contracts import (
    CHANNELS,
    CUSTOMER_COLUMNS,
    CUSTOMER_TYPES,
    EVENT_COLUMNS,
    EVENT_TYPES,
    Column,
)
from pipelines.connectors import check_folder
from pipelines.progress import progress_bar

__all__ = [
    "BLOCK_SIZE",
    "CAMPAIGN_COLUMNS",
    "CAMPAIGN_HORIZON_DAYS",
    "CAMPAIGN_NAME",
    "CAMPAIGN_OFFER",
    "CATEGORIES",
    "CATEGORY_AFFINITY",
    "DEFAULT_END",
    "DEFAULT_START",
    "REGIONS",
    "SEASON",
    "UPLIFT_TYPES",
    "SampleFormat",
    "SampleSummary",
    "generate_sample",
    "sample_command",
]

SampleFormat = Literal["parquet", "csv"]
"""File formats :func:`generate_sample` writes."""

DEFAULT_START: Final = dt.date(2023, 1, 1)
DEFAULT_END: Final = dt.date(2025, 12, 31)
BLOCK_SIZE: Final = 5000
"""Customers simulated together with one random generator; part of the generating model."""

_DEFAULT_START_OPTION: Final = dt.datetime.combine(DEFAULT_START, dt.time())
_DEFAULT_END_OPTION: Final = dt.datetime.combine(DEFAULT_END, dt.time())
_US_PER_DAY: Final = 86_400_000_000
_US_PER_HOUR: Final = 3_600_000_000
_US_PER_MINUTE: Final = 60_000_000
_EPOCH: Final = dt.date(1970, 1, 1)

# --- customers -------------------------------------------------------------------------------
_TYPE_SHARE: Final = np.array([0.85, 0.12, 0.03])  # consumer, business, channel_partner
REGIONS: Final = ("north", "south", "east", "west", "central")
_REGION_SHARE: Final = np.array([0.22, 0.24, 0.2, 0.18, 0.16])
_PRE_WINDOW_SHARE: Final = 0.4  # signed up before the window (uniform over 4 years before)
_PRE_WINDOW_YEARS: Final = 4
_PRE_LAPSED: Final = 0.18  # of those, already lapsed at the window start
_EMAIL_OPT_IN: Final = np.array([0.8, 0.92, 0.9])
_SMS_OPT_IN: Final = np.array([0.3, 0.1, 0.15])
_APP_USER: Final = np.array([0.45, 0.1, 0.2])
_SUB_ELIGIBLE: Final = np.array([0.3, 0.12, 0.0])
_ORDER_RATE: Final = np.array([0.26, 0.12, 0.32])  # orders a month at average engagement
_EXTRA_UNITS: Final = np.array([0.4, 9.0, 5.0])  # quantity = 1 + Poisson(extra units)

# --- latent engagement (logit scale) ---------------------------------------------------------
_BASE_MEAN: Final = 0.3
_BASE_SD: Final = 0.8
_REVERSION: Final = 0.2  # monthly pull of engagement towards the customer's baseline
_Z_NOISE: Final = 0.3
_STATE_PULL: Final = np.array([0.0, -0.45, -0.2])  # active, drifting, lapsed
_ACTIVITY: Final = np.array([1.0, 0.45, 0.04])  # order, visit and click multiplier per state
_OPEN_RATE_FACTOR: Final = np.array([1.0, 0.55, 0.15])
_DRIFT_LOGIT: Final = -4.4  # active -> drifting hazard, logit intercept
_DRIFT_OPEN_COMPLAINT: Final = 1.9
_DRIFT_BAD_SERVICE: Final = 0.9
_DRIFT_LOW_ENGAGEMENT: Final = -0.8  # times engagement
_LAPSE: Final = 0.35  # drifting -> lapsed a month
_SETTLE: Final = 0.08  # drifting -> active a month
_WIN_BACK: Final = 0.01  # lapsed -> active a month
_RECOVERY: Final = 0.7  # drifting/lapsed -> active after a quickly resolved complaint
_GRUDGE_DAYS: Final = 120  # how long a never-resolved complaint weighs on engagement

# --- e-mail, SMS, visits -----------------------------------------------------------------------
_EMAILS: Final = 0.9  # campaigns a month to opted-in customers (x1.6 in Nov/Dec)
_OPEN_LOGIT: Final = (-1.0, 1.4)  # intercept, times engagement
_CLICK_LOGIT: Final = (-1.2, 0.8)
_CLICK_ORDER: Final = 0.12  # chance a click leads to an order within days
_CLICK_ORDER_DAYS: Final = 3.0
_SMS: Final = 0.5
_VISITS: Final = 0.45  # visits a month at engagement 0 (times 0.3 + 1.4 * sigmoid)

# --- orders --------------------------------------------------------------------------------
SEASON: Final = np.array([0.85, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.45, 1.75])
"""Order-rate multiplier per calendar month (January first)."""
_WELCOME_ORDER: Final = 0.5
_SUBSCRIPTION_ORDERS: Final = 0.25  # extra orders a month while subscribed
_PRICE_SD: Final = 0.3
_MARGIN_SD: Final = 0.06

CATEGORIES: Final = (
    "apparel",
    "shoes",
    "beauty",
    "electronics",
    "computers",
    "accessories",
    "home",
    "kitchen",
    "garden",
    "toys",
)
_POPULARITY: Final = np.array(
    [
        [0.2, 0.08, 0.12, 0.1, 0.04, 0.1, 0.1, 0.1, 0.06, 0.1],  # consumer
        [0.03, 0.02, 0.02, 0.2, 0.25, 0.2, 0.12, 0.08, 0.05, 0.03],  # business
        [0.1, 0.08, 0.08, 0.15, 0.12, 0.15, 0.1, 0.1, 0.06, 0.06],  # channel partner
    ]
)
_UNIT_PRICE: Final = np.array([45.0, 80.0, 25.0, 250.0, 900.0, 30.0, 120.0, 60.0, 70.0, 35.0])
_MARGIN_RATE: Final = np.array([0.45, 0.4, 0.55, 0.15, 0.1, 0.5, 0.35, 0.35, 0.3, 0.35])
_RETURN_RATE: Final = np.array([0.16, 0.18, 0.03, 0.07, 0.06, 0.05, 0.06, 0.04, 0.03, 0.05])
_AFFINITY_PAIRS: Final = (
    ("apparel", "shoes", 1.0),
    ("shoes", "apparel", 0.8),
    ("apparel", "beauty", 0.6),
    ("beauty", "apparel", 0.4),
    ("electronics", "accessories", 1.0),
    ("computers", "accessories", 1.2),
    ("electronics", "computers", 0.5),
    ("computers", "electronics", 0.5),
    ("home", "kitchen", 0.9),
    ("kitchen", "home", 0.7),
    ("home", "garden", 0.6),
    ("garden", "home", 0.4),
    ("toys", "apparel", 0.5),
    ("apparel", "toys", 0.3),
)


def _affinity() -> np.ndarray:
    """Return the cross-sell affinity matrix from the pairs above (row: owned, column: next)."""
    a = np.full((len(CATEGORIES), len(CATEGORIES)), 0.04)
    np.fill_diagonal(a, 0.0)
    for src, dst, w in _AFFINITY_PAIRS:
        a[CATEGORIES.index(src), CATEGORIES.index(dst)] = w
    return a


CATEGORY_AFFINITY: Final = _affinity()
"""Pull of an owned category (row) towards a first purchase of another (column)."""
_REPEAT_WEIGHT: Final = 1.0  # weight of each owned category in the next order
_NEW_WEIGHT: Final = 0.35  # times (popularity / 5 + affinity from owned categories)

# --- service -------------------------------------------------------------------------------
_COMPLAINT_PER_ORDER: Final = 0.035
_COMPLAINT_PER_RETURN: Final = 0.15
_COMPLAINT_BACKGROUND: Final = 0.01
_RESOLVED: Final = np.array([0.72, 0.85, 0.8])  # share of complaints ever resolved, per type
_QUICK: Final = 0.6  # share of resolved complaints closed within days
_QUICK_DAYS: Final = 2.0
_SLOW_DAYS: Final = (10.0, 20.0)  # minimum, plus exponential mean
_QUICK_LIMIT_DAYS: Final = 7
_EFFECT_QUICK: Final = 0.25
_EFFECT_SLOW: Final = -0.4
_EFFECT_NEVER: Final = -0.9
_EFFECT_OPEN: Final = -0.35  # each month a complaint is still open
_EFFECT_RETURN: Final = -0.1
_CALLS: Final = np.array([0.04, 0.2, 0.15])
_CALL_AFTER_COMPLAINT: Final = 0.6
_SURVEY_AFTER_RESOLUTION: Final = 0.35
_SURVEYS: Final = 0.04
_REVIEW_PER_ORDER: Final = 0.07
_REFERRALS: Final = 0.05  # times sigmoid(3 * (engagement - 0.8))
_SUBSCRIBE: Final = 0.04  # a month, times sigmoid(engagement), among eligible active customers
_CANCEL: Final = np.array([0.006, 0.15, 0.6])  # per state


# --- the sample campaign (written only with campaign=True) -----------------------------------
CAMPAIGN_NAME: Final = "sample_retention"
CAMPAIGN_OFFER: Final = "retention_email"
"""The offer of the sample campaign, as named in ``docs/examples/offers.yaml``."""
CAMPAIGN_HORIZON_DAYS: Final = 90
"""Outcomes are what customers did in the days after the window end."""
_CAMPAIGN_CONTROL: Final = 0.5  # random hold-out share
UPLIFT_TYPES: Final = ("persuadable", "sure_thing", "lost_cause", "do_not_disturb")
"""How contact changes a customer's chance to order: helps, no need, no use, pushes away."""
_ORDER_P: Final = np.array([[0.05, 0.55], [0.75, 0.75], [0.03, 0.03], [0.50, 0.10]])
# P(order in the horizon) without / with contact, per uplift type
_TYPE_WEIGHTS: Final = np.array(  # persuadable, sure_thing, lost_cause, do_not_disturb
    [[0.3, 0.0, 0.1, 0.1], [2.0, 0.1, 0.3, 0.1], [0.3, 0.02, 2.0, 0.05]]  # active, drifting, lapsed
)
_SURE_THING_Z: Final = 3.0  # active customers: sure-thing weight times sigmoid(2 z)
_OVERDUE_DAYS: Final = (
    150.0,
    75.0,
)  # persuadable weight + 4 exp(-((days since order - 150) / 75)^2)
_RECENT_DAYS: Final = 45.0  # sure-thing weight + 2 when the last order is this recent
_LONG_GONE_DAYS: Final = 365.0  # lost-cause weight + 3 when the last order is older
_OPEN_COMPLAINT_DND: Final = 6.0  # an open complaint adds to the do-not-disturb weight
_CAMPAIGN_AOV: Final = np.array([80.0, 1000.0, 400.0])  # order value per customer type
_CAMPAIGN_MARGIN: Final = (0.3, 0.05)  # margin rate: mean, sd

CAMPAIGN_COLUMNS: Final[tuple[str, ...]] = (
    "customer_id",
    "campaign",
    "offer",
    "control",
    "responded",
    "ordered",
    "revenue",
    "margin",
)
"""Columns of ``campaign.<format>``: the outcomes file ``guanxi campaign record`` reads."""


def _channels(**shares: float) -> np.ndarray:
    """Return a probability vector over :data:`CHANNELS`."""
    p = np.zeros(len(CHANNELS))
    for name, share in shares.items():
        p[CHANNELS.index(name)] = share
    return p / p.sum()


_ORDER_CHANNELS: Final = np.stack(
    [
        _channels(web=0.5, app=0.2, store=0.3),
        _channels(web=0.55, phone=0.25, store=0.1, fax=0.05, email=0.05),
        _channels(partner=0.7, web=0.2, phone=0.1),
    ]
)
_VISIT_CHANNELS: Final = np.stack(
    [
        _channels(web=0.55, app=0.3, store=0.15),
        _channels(web=0.8, app=0.05, store=0.15),
        _channels(web=0.7, app=0.2, store=0.1),
    ]
)
_COMPLAINT_CHANNELS: Final = _channels(
    phone=0.4, email=0.25, web=0.15, service_center=0.15, store=0.05
)
_RESOLUTION_CHANNELS: Final = _channels(phone=0.5, email=0.3, service_center=0.2)
_ONLINE_CHANNELS: Final = _channels(web=0.65, app=0.35)
_SURVEY_CHANNELS: Final = _channels(email=0.7, web=0.3)
_CANCEL_CHANNELS: Final = _channels(web=0.5, app=0.2, phone=0.3)

_ET: Final = {name: i for i, name in enumerate(EVENT_TYPES)}
_CH: Final = {name: i for i, name in enumerate(CHANNELS)}
_ORDER_REF: Final = 0
_TICKET_REF: Final = 1


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_sample` wrote.

    Parameters
    ----------
    customers : int
        Number of customers written.
    events : int
        Number of events written.
    events_path : pathlib.Path
        The events file.
    customers_path : pathlib.Path
        The customers file.
    events_by_type : dict of str to int
        Events written per event type.
    campaign_path : pathlib.Path or None
        The sample campaign's outcomes, when one was asked for.
    campaign_rows : int
        Customers in the sample campaign.
    """

    customers: int
    events: int
    events_path: Path
    customers_path: Path
    events_by_type: dict[str, int] = field(default_factory=dict)
    campaign_path: Path | None = None
    campaign_rows: int = 0


@dataclass(frozen=True)
class _Window:
    """Simulation window in microseconds since the epoch (end exclusive) and its months."""

    start: int
    end: int
    months: tuple[tuple[int, int, int], ...]  # (start, end, calendar month 1-12)


def _us(day: dt.date) -> int:
    return (day - _EPOCH).days * _US_PER_DAY


def _window(start: dt.date, end: dt.date) -> _Window:
    months = []
    first = dt.date(start.year, start.month, 1)
    while first <= end:
        following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        lo = max(first, start)
        hi = min(following, end + dt.timedelta(days=1))
        months.append((_us(lo), _us(hi), first.month))
        first = following
    return _Window(_us(start), _us(end + dt.timedelta(days=1)), tuple(months))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Draw one column index per row of non-negative ``weights`` (rows need not sum to 1)."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _rank_within(idx: np.ndarray) -> np.ndarray:
    """Return the 0-based position of each element among equal values of sorted ``idx``."""
    if len(idx) == 0:
        return idx
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    counts = np.diff(np.r_[starts, len(idx)])
    return np.arange(len(idx)) - np.repeat(starts, counts)


class _Sink:
    """Accumulates event columns as numpy arrays; null is NaN (floats) or -1 (codes)."""

    dtypes: Final[dict[str, type]] = {
        "cust": np.int32,
        "ts": np.int64,
        "etype": np.int8,
        "channel": np.int8,
        "category": np.int8,
        "amount": np.float64,
        "margin": np.float64,
        "quantity": np.float64,
        "score": np.float64,
        "ref_kind": np.int8,
        "ref_seq": np.int32,
    }

    def __init__(self, end: int) -> None:
        self.end = end
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in self.dtypes}

    def add(
        self,
        etype: str,
        cust: np.ndarray,
        ts: np.ndarray,
        channel: np.ndarray | int,
        *,
        category: np.ndarray | None = None,
        amount: np.ndarray | None = None,
        margin: np.ndarray | None = None,
        quantity: np.ndarray | None = None,
        score: np.ndarray | None = None,
        ref: tuple[int, np.ndarray] | None = None,
    ) -> None:
        """Add events of one type; those at or after the window end are dropped."""
        keep = ts < self.end
        k = int(keep.sum())
        if k == 0:
            return
        values: dict[str, np.ndarray | int | None] = {
            "cust": cust,
            "ts": ts,
            "etype": _ET[etype],
            "channel": channel,
            "category": category,
            "amount": amount,
            "margin": margin,
            "quantity": quantity,
            "score": score,
            "ref_kind": None if ref is None else ref[0],
            "ref_seq": None if ref is None else ref[1],
        }
        for name, dtype in self.dtypes.items():
            v = values[name]
            col: np.ndarray
            if v is None:
                col = np.full(k, np.nan if dtype is np.float64 else -1, dtype=dtype)
            elif isinstance(v, int):
                col = np.full(k, v, dtype=dtype)
            else:
                col = v[keep].astype(dtype, copy=False)
            self.parts[name].append(col)

    def arrays(self) -> dict[str, np.ndarray]:
        """Return every column as one array (empty arrays of the right type if no events)."""
        if not self.parts["ts"]:
            return {name: np.zeros(0, dtype) for name, dtype in self.dtypes.items()}
        return {name: np.concatenate(parts) for name, parts in self.parts.items()}


class _Block:
    """Simulates one block of customers month by month; every array has one row per customer."""

    def __init__(self, rng: np.random.Generator, n: int, window: _Window) -> None:
        self.rng = rng
        self.n = n
        self.window = window
        self.sink = _Sink(window.end)
        r = rng
        self.ctype = _pick(r, np.broadcast_to(_TYPE_SHARE, (n, 3)))
        self.region = _pick(r, np.broadcast_to(_REGION_SHARE, (n, len(REGIONS))))
        pre = r.random(n) < _PRE_WINDOW_SHARE
        pre_span = _PRE_WINDOW_YEARS * 365 * _US_PER_DAY
        self.signup = np.where(
            pre,
            window.start - (r.random(n) * pre_span).astype(np.int64) - 1,
            window.start + (r.random(n) * (window.end - window.start)).astype(np.int64),
        )
        t = self.ctype
        self.email_opt = r.random(n) < _EMAIL_OPT_IN[t]
        self.sms_opt = r.random(n) < _SMS_OPT_IN[t]
        self.app_user = r.random(n) < _APP_USER[t]
        self.sub_eligible = r.random(n) < _SUB_ELIGIBLE[t]
        self.base = r.normal(_BASE_MEAN, _BASE_SD, n)
        self.order_rate = _ORDER_RATE[t] * r.lognormal(-0.125, 0.5, n)
        self.price_level = r.lognormal(0.0, 0.25, n)
        lapsed = pre & (r.random(n) < _PRE_LAPSED)
        self.state = np.where(lapsed, 2, 0).astype(np.int8)
        self.z = self.base + r.normal(0.0, 0.5, n) - 1.0 * lapsed + 0.3 * ~pre
        self.subscribed = pre & ~lapsed & self.sub_eligible & (r.random(n) < 0.3)
        self.owned = np.zeros((n, len(CATEGORIES)), dtype=bool)
        n_init = np.where(pre, 1 + r.binomial(3, 0.35, n), 0)
        for step in range(4):
            who = np.flatnonzero(n_init > step)
            w = self._category_weights(who) * ~self.owned[who]
            self.owned[who, _pick(r, w)] = True
        self.n_orders = np.zeros(n, dtype=np.int32)
        self.last_order = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self.n_tickets = np.zeros(n, dtype=np.int32)
        self.open_until = np.zeros(n, dtype=np.int64)
        self.first_ts = np.maximum(self.signup, window.start)  # no event comes earlier
        self.bad_service = np.zeros(n)  # complaints this month not resolved within days
        self.quick_fix = np.zeros(n)  # complaints this month resolved within days

    # --- helpers ------------------------------------------------------------------------------
    def _category_weights(self, idx: np.ndarray) -> np.ndarray:
        owned = self.owned[idx]
        new = _POPULARITY[self.ctype[idx]] / 5.0 + owned.astype(np.float64) @ CATEGORY_AFFINITY
        new = np.where(owned.any(axis=1, keepdims=True), new, _POPULARITY[self.ctype[idx]])
        return np.where(owned, _REPEAT_WEIGHT, _NEW_WEIGHT * new)

    def _channel(self, idx: np.ndarray, table: np.ndarray) -> np.ndarray:
        if table.ndim == 1:
            table = np.broadcast_to(table, (len(_TYPE_SHARE), len(table)))
        probs = table[self.ctype[idx]]
        ch = _pick(self.rng, probs)
        return np.where((ch == _CH["app"]) & ~self.app_user[idx], _CH["web"], ch)

    def _spread(self, counts: np.ndarray, lo: np.ndarray, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Repeat customer indices by ``counts`` with uniform timestamps in ``[lo, hi)``."""
        idx = np.repeat(np.arange(self.n), counts)
        return idx, self._uniform(idx, lo, hi)

    def _uniform(self, idx: np.ndarray, lo: np.ndarray, hi: int) -> np.ndarray:
        span = (hi - lo[idx]).astype(np.float64)
        return lo[idx] + (self.rng.random(len(idx)) * span).astype(np.int64)

    def _after(self, ts: np.ndarray, mean_us: float, minimum_us: float = 0.0) -> np.ndarray:
        return ts + int(minimum_us) + self.rng.exponential(mean_us, len(ts)).astype(np.int64)

    def _thin(self, p: np.ndarray | float, size: int) -> np.ndarray:
        return self.rng.random(size) < p

    # --- one month ------------------------------------------------------------------------------
    def month(self, ms: int, me: int, cal: int) -> None:
        """Simulate the month ``[ms, me)`` (calendar month ``cal``) and update the state."""
        r, n, sink = self.rng, self.n, self.sink
        lo = np.maximum(self.signup, ms)
        expo = np.clip((me - lo) / (me - ms), 0.0, 1.0)
        lo = np.minimum(lo, me)
        sig = _sigmoid(self.z)
        act = _ACTIVITY[self.state]
        effect = np.zeros(n)

        # e-mail campaigns, opens and clicks; clicks lead to orders
        emails = _EMAILS * (1.6 if cal in (11, 12) else 1.0)
        idx, ts = self._spread(r.poisson(emails * expo * self.email_opt), lo, me)
        sink.add("email_sent", idx, ts, _CH["email"])
        p_open = _sigmoid(_OPEN_LOGIT[0] + _OPEN_LOGIT[1] * self.z) * _OPEN_RATE_FACTOR[self.state]
        keep = self._thin(p_open[idx], len(idx))
        idx, ts = idx[keep], self._after(ts[keep], 6 * _US_PER_HOUR)
        sink.add("email_open", idx, ts, _CH["email"])
        keep = self._thin(_sigmoid(_CLICK_LOGIT[0] + _CLICK_LOGIT[1] * self.z[idx]), len(idx))
        idx, ts = idx[keep], self._after(ts[keep], 10 * _US_PER_MINUTE)
        sink.add("email_click", idx, ts, _CH["email"])
        keep = self._thin(_CLICK_ORDER * act[idx], len(idx))
        clicked_idx = idx[keep]
        clicked_ts = self._after(ts[keep], _CLICK_ORDER_DAYS * _US_PER_DAY, 10 * _US_PER_MINUTE)

        # SMS
        idx, ts = self._spread(r.poisson(_SMS * expo * self.sms_opt), lo, me)
        sink.add("sms_sent", idx, ts, _CH["sms"])
        keep = self._thin(0.03 + 0.12 * sig[idx] * act[idx], len(idx))
        sink.add("sms_reply", idx[keep], self._after(ts[keep], 2 * _US_PER_HOUR), _CH["sms"])

        # browsing visits
        visits = _VISITS * (0.3 + 1.4 * sig) * np.sqrt(act) * expo
        idx, ts = self._spread(r.poisson(visits), lo, me)
        sink.add("visit", idx, ts, self._channel(idx, _VISIT_CHANNELS))

        # signups: a first visit, often a welcome order
        new = np.flatnonzero((self.signup >= ms) & (self.signup < me))
        sink.add("visit", new, self.signup[new], self._channel(new, _VISIT_CHANNELS))
        welcome = new[self._thin(_WELCOME_ORDER, len(new))]
        welcome_ts = self._after(self.signup[welcome], 5 * _US_PER_DAY)

        # orders: a steady rate, plus click-led, welcome and subscription orders
        rate = self.order_rate * SEASON[cal - 1] * (0.2 + 1.6 * sig) * act
        rate = (rate + _SUBSCRIPTION_ORDERS * self.subscribed * (self.state < 2)) * expo
        idx, ts = self._spread(r.poisson(rate), lo, me)
        idx = np.concatenate([idx, clicked_idx, welcome])
        ts = np.concatenate([ts, clicked_ts, welcome_ts])
        order = np.argsort(idx, kind="stable")
        idx, ts = idx[order], ts[order]
        self._orders(idx, ts, effect)

        # background complaints and calls, surveys, referrals
        cidx, cts = self._spread(r.poisson(_COMPLAINT_BACKGROUND * expo), lo, me)
        self._complaints(cidx, cts, effect)
        idx, ts = self._spread(r.poisson(_CALLS[self.ctype] * expo), lo, me)
        sink.add("call", idx, ts, _CH["phone"])
        idx, ts = self._spread(r.poisson(_SURVEYS * expo), lo, me)
        self._survey(idx, ts, 0.0)
        refer = _REFERRALS * _sigmoid(3.0 * (self.z - 0.8)) * act * expo
        idx, ts = self._spread(r.poisson(refer), lo, me)
        sink.add("referral", idx, ts, self._channel(idx, _ONLINE_CHANNELS))

        # subscriptions
        p_sub = _SUBSCRIBE * sig * expo * (self.sub_eligible & ~self.subscribed & (self.state == 0))
        idx = np.flatnonzero(self._thin(p_sub, n))
        sink.add("subscribe", idx, self._uniform(idx, lo, me), self._channel(idx, _ONLINE_CHANNELS))
        self.subscribed[idx] = True
        p_cancel = _CANCEL[self.state] * (self.subscribed & (expo > 0))
        p_cancel[idx] = 0.0
        idx = np.flatnonzero(self._thin(p_cancel, n))
        sink.add("cancel", idx, self._uniform(idx, lo, me), self._channel(idx, _CANCEL_CHANNELS))
        self.subscribed[idx] = False

        self._transition(me, expo > 0, effect)

    def _orders(self, idx: np.ndarray, ts: np.ndarray, effect: np.ndarray) -> None:
        r, sink = self.rng, self.sink
        seq = self.n_orders[idx] + 1 + _rank_within(idx)
        self.n_orders += np.bincount(idx, minlength=self.n).astype(np.int32)
        written = ts < self.window.end
        np.maximum.at(self.last_order, idx[written], ts[written])
        cat = _pick(r, self._category_weights(idx))
        qty = 1 + r.poisson(_EXTRA_UNITS[self.ctype[idx]])
        unit = _UNIT_PRICE[cat] * self.price_level[idx] * r.lognormal(0.0, _PRICE_SD, len(idx))
        amount = np.round(qty * unit, 2)
        margin = np.round(amount * (_MARGIN_RATE[cat] + r.normal(0.0, _MARGIN_SD, len(idx))), 2)
        channel = self._channel(idx, _ORDER_CHANNELS)
        online = (channel == _CH["web"]) | (channel == _CH["app"])
        lead = (r.uniform(2, 40, int(online.sum())) * _US_PER_MINUTE).astype(np.int64)
        browse = ts[online] - lead
        later = browse >= self.first_ts[idx[online]]  # else the first visit was the browse
        sink.add("visit", idx[online][later], browse[later], channel[online][later])
        ref = (_ORDER_REF, seq)
        sink.add(
            "order",
            idx,
            ts,
            channel,
            category=cat,
            amount=amount,
            margin=margin,
            quantity=qty,
            ref=ref,
        )
        self.owned[idx, cat] = True

        sig = _sigmoid(self.z[idx])
        ret = self._thin(_RETURN_RATE[cat] * (1.4 - 0.8 * sig), len(idx))
        ridx, rqty = idx[ret], qty[ret]
        back = np.where(rqty == 1, 1, 1 + r.binomial(rqty - 1, 0.3))
        rts = self._after(ts[ret], 8 * _US_PER_DAY, 2 * _US_PER_DAY)
        sink.add(
            "return",
            ridx,
            rts,
            channel[ret],
            category=cat[ret],
            amount=np.round(amount[ret] * back / rqty, 2),
            quantity=back,
            ref=(_ORDER_REF, seq[ret]),
        )
        effect += _EFFECT_RETURN * np.bincount(ridx, minlength=self.n)

        rev = self._thin(_REVIEW_PER_ORDER, len(idx))
        score = np.clip(
            np.round(3.4 + 1.0 * self.z[idx[rev]] + r.normal(0, 0.8, int(rev.sum()))), 1, 5
        )
        rev_ts = self._after(ts[rev], 7 * _US_PER_DAY, 3 * _US_PER_DAY)
        sink.add("review", idx[rev], rev_ts, self._channel(idx[rev], _ONLINE_CHANNELS), score=score)

        from_orders = self._thin(_COMPLAINT_PER_ORDER, len(idx))
        from_returns = self._thin(_COMPLAINT_PER_RETURN, len(ridx))
        cidx = np.concatenate([idx[from_orders], ridx[from_returns]])
        cts = np.concatenate(
            [
                self._after(ts[from_orders], 6 * _US_PER_DAY),
                self._after(rts[from_returns], _US_PER_DAY),
            ]
        )
        self._complaints(cidx, cts, effect)

    def _complaints(self, idx: np.ndarray, ts: np.ndarray, effect: np.ndarray) -> None:
        r, sink, k = self.rng, self.sink, len(idx)
        order = np.argsort(idx, kind="stable")
        idx, ts = idx[order], ts[order]
        seq = self.n_tickets[idx] + 1 + _rank_within(idx)
        self.n_tickets += np.bincount(idx, minlength=self.n).astype(np.int32)
        channel = self._channel(idx, _COMPLAINT_CHANNELS)
        sink.add("complaint", idx, ts, channel, ref=(_TICKET_REF, seq))
        call = self._thin(_CALL_AFTER_COMPLAINT, k)
        sink.add("call", idx[call], self._after(ts[call], _US_PER_DAY), _CH["phone"])

        resolved = self._thin(_RESOLVED[self.ctype[idx]], k)
        quick = self._thin(_QUICK, k)
        delay = np.where(
            quick,
            r.exponential(_QUICK_DAYS * _US_PER_DAY, k),
            (_SLOW_DAYS[0] + r.exponential(_SLOW_DAYS[1], k)) * _US_PER_DAY,
        ).astype(np.int64)
        done = ts + delay
        res = np.flatnonzero(resolved)
        sink.add(
            "complaint_resolved",
            idx[res],
            done[res],
            self._channel(idx[res], _RESOLUTION_CHANNELS),
            ref=(_TICKET_REF, seq[res]),
        )
        survey = res[self._thin(_SURVEY_AFTER_RESOLUTION, len(res))]
        fast = delay[survey] <= _QUICK_LIMIT_DAYS * _US_PER_DAY
        survey_ts = self._after(done[survey], 2 * _US_PER_DAY)
        self._survey(idx[survey], survey_ts, np.where(fast, 0.5, -1.0))

        fast_all = resolved & (delay <= _QUICK_LIMIT_DAYS * _US_PER_DAY)
        slow_all = resolved & ~fast_all
        grudge = ts + _GRUDGE_DAYS * _US_PER_DAY
        until = np.where(resolved, done, grudge)
        np.maximum.at(self.open_until, idx, until)
        impact = np.select([fast_all, slow_all], [_EFFECT_QUICK, _EFFECT_SLOW], _EFFECT_NEVER)
        effect += np.bincount(idx, weights=impact, minlength=self.n)
        self.bad_service += np.bincount(idx, weights=~fast_all, minlength=self.n)
        self.quick_fix += np.bincount(idx, weights=fast_all, minlength=self.n)

    def _survey(self, idx: np.ndarray, ts: np.ndarray, shift: np.ndarray | float) -> None:
        noise = self.rng.normal(0.0, 1.5, len(idx))
        score = np.clip(np.round(5.5 + 2.0 * self.z[idx] + shift + noise), 0, 10)
        self.sink.add("survey", idx, ts, self._channel(idx, _SURVEY_CHANNELS), score=score)

    def _transition(self, me: int, alive: np.ndarray, effect: np.ndarray) -> None:
        r, n = self.rng, self.n
        open_now = self.open_until > me
        hazard = _sigmoid(
            _DRIFT_LOGIT
            + _DRIFT_OPEN_COMPLAINT * open_now
            + _DRIFT_BAD_SERVICE * (self.bad_service > 0)
            + _DRIFT_LOW_ENGAGEMENT * self.z
        )
        u = r.random(n)
        state = self.state
        nxt = state.copy()
        nxt[(state == 0) & (u < hazard)] = 1
        nxt[(state == 1) & (u < _LAPSE)] = 2
        nxt[(state == 1) & (u >= 1 - _SETTLE)] = 0
        nxt[(state == 2) & (u < _WIN_BACK)] = 0
        recovered = (self.quick_fix > 0) & (state > 0) & (r.random(n) < _RECOVERY)
        nxt[recovered] = 0
        z = (
            self.z
            + _REVERSION * (self.base - self.z)
            + r.normal(0.0, _Z_NOISE, n)
            + _STATE_PULL[state]
            + _EFFECT_OPEN * open_now
            + 0.5 * recovered
            + effect
        )
        self.z = np.where(alive, z, self.z)
        self.state = np.where(alive, nxt, state).astype(np.int8)
        self.bad_service[:] = 0
        self.quick_fix[:] = 0

    def run(self) -> dict[str, np.ndarray]:
        """Simulate every month of the window and return the event columns."""
        for ms, me, cal in self.window.months:
            self.month(ms, me, cal)
        return self.sink.arrays()

    def campaign(self, rng: np.random.Generator, known: np.ndarray) -> dict[str, np.ndarray]:
        """Run the sample campaign at the window end on the customers ``known`` (indices).

        Uses its own generator, so the events do not depend on whether a campaign is written.
        """
        end = self.window.end
        k = len(known)
        weights = _TYPE_WEIGHTS[self.state[known]].copy()
        active = self.state[known] == 0
        weights[active, 1] = _SURE_THING_Z * _sigmoid(2.0 * self.z[known[active]])
        days = (end - self.last_order[known]) / _US_PER_DAY
        weights[:, 0] += 4.0 * np.exp(-(((days - _OVERDUE_DAYS[0]) / _OVERDUE_DAYS[1]) ** 2))
        weights[days <= _RECENT_DAYS, 1] += 2.0
        weights[days > _LONG_GONE_DAYS, 2] += 3.0
        weights[self.open_until[known] > end, 3] += _OPEN_COMPLAINT_DND
        kind = _pick(rng, weights)
        control = rng.random(k) < _CAMPAIGN_CONTROL
        p_order = _ORDER_P[kind, (~control).astype(np.int64)]
        ordered = rng.random(k) < p_order
        orders = np.where(ordered, 1 + rng.poisson(0.6, k), 0)
        aov = _CAMPAIGN_AOV[self.ctype[known]] * self.price_level[known]
        revenue = np.round(orders * aov * rng.lognormal(-0.045, 0.3, k), 2)
        margin = np.round(revenue * rng.normal(*_CAMPAIGN_MARGIN, k), 2)
        return {
            "cust": known,
            "control": control,
            "ordered": ordered,
            "revenue": revenue,
            "margin": margin,
            "kind": kind,
            "p_control": _ORDER_P[kind, 0],
            "p_treated": _ORDER_P[kind, 1],
        }


def _arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """Return the Arrow schema polars gives the contract ``columns``."""
    return pl.DataFrame(schema={c.name: c.dtype for c in columns}).to_arrow().schema


def _customer_ids(first: int, count: int, width: int) -> pa.Array:
    numbers = pc.cast(pa.array(np.arange(first + 1, first + count + 1)), pa.large_string())
    prefix, sep = pa.scalar("C", pa.large_string()), pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width, padding="0"), sep)


def _lookup(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Turn codes into names; a negative code is null."""
    indices = pa.array(codes, mask=codes < 0)
    return pa.array(names, pa.large_string()).take(indices)


def _campaign_table(parts: list[dict[str, np.ndarray]], ids: pa.Array) -> pa.Table:
    """Turn the blocks' campaign arrays into the outcomes table (truth columns last)."""
    cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return pa.table(
        {
            "customer_id": ids.take(pa.array(cols["cust"])),
            "campaign": pa.array([CAMPAIGN_NAME] * len(cols["cust"]), pa.large_string()),
            "offer": pa.array([CAMPAIGN_OFFER] * len(cols["cust"]), pa.large_string()),
            "control": pa.array(cols["control"]),
            "responded": pa.array(cols["ordered"]),
            "ordered": pa.array(cols["ordered"]),
            "revenue": pa.array(cols["revenue"]),
            "margin": pa.array(cols["margin"]),
            "uplift_type": _lookup(UPLIFT_TYPES, cols["kind"]),
            "p_order_control": pa.array(cols["p_control"]),
            "p_order_treated": pa.array(cols["p_treated"]),
        }
    ).cast(_campaign_schema())


def _campaign_schema() -> pa.Schema:
    return (
        pl.DataFrame(
            schema={
                "customer_id": pl.String,
                "campaign": pl.String,
                "offer": pl.String,
                "control": pl.Boolean,
                "responded": pl.Boolean,
                "ordered": pl.Boolean,
                "revenue": pl.Float64,
                "margin": pl.Float64,
                "uplift_type": pl.String,
                "p_order_control": pl.Float64,
                "p_order_treated": pl.Float64,
            }
        )
        .to_arrow()
        .schema
    )


def _chunk_tables(
    seed: int,
    first_block: int,
    last_block: int,
    n_customers: int,
    window: _Window,
    width: int,
    campaign: bool = False,
) -> tuple[pa.Table, pa.Table, pa.Table | None]:
    """Simulate blocks ``[first_block, last_block)``: (events, customers, campaign or None)."""
    parts: list[dict[str, np.ndarray]] = []
    campaign_parts: list[dict[str, np.ndarray]] = []
    signup, ctype, region = [], [], []
    chunk_first = first_block * BLOCK_SIZE
    for b in range(first_block, last_block):
        n = min(BLOCK_SIZE, n_customers - b * BLOCK_SIZE)
        block = _Block(np.random.default_rng([seed, b]), n, window)
        cols = block.run()
        if campaign:  # every customer with an order in the file
            buyers = np.unique(cols["cust"][cols["etype"] == _ET["order"]])
            outcome = block.campaign(np.random.default_rng([seed, b, 1]), buyers)
            outcome["cust"] += b * BLOCK_SIZE - chunk_first
            campaign_parts.append(outcome)
        cols["cust"] += b * BLOCK_SIZE - chunk_first
        parts.append(cols)
        signup.append(block.signup)
        ctype.append(block.ctype)
        region.append(block.region)
    ev = {name: np.concatenate([p[name] for p in parts]) for name in _Sink.dtypes}
    order = np.lexsort((ev["ts"], ev["cust"]))
    ev = {name: values[order] for name, values in ev.items()}

    ids = _customer_ids(chunk_first, sum(len(s) for s in signup), width)
    cust = ids.take(pa.array(ev["cust"]))
    seq = pc.cast(pa.array(ev["ref_seq"], mask=ev["ref_kind"] < 0), pa.large_string())
    prefix = _lookup(("-O", "-T"), np.maximum(ev["ref_kind"], 0))
    events = pa.table(
        {
            "customer_id": cust,
            "ts": pa.array(ev["ts"], pa.timestamp("us", tz="UTC")),
            "event_type": _lookup(EVENT_TYPES, ev["etype"]),
            "channel": _lookup(CHANNELS, ev["channel"]),
            "amount": pa.array(ev["amount"], from_pandas=True),
            "margin": pa.array(ev["margin"], from_pandas=True),
            "quantity": pa.array(ev["quantity"], from_pandas=True),
            "category": _lookup(CATEGORIES, ev["category"]),
            "score": pa.array(ev["score"], from_pandas=True),
            "ref_id": pc.binary_join_element_wise(
                cust, prefix, seq, pa.scalar("", pa.large_string())
            ),
        }
    ).cast(_arrow_schema(EVENT_COLUMNS))
    customers = pa.table(
        {
            "customer_id": ids,
            "signup_ts": pa.array(np.concatenate(signup), pa.timestamp("us", tz="UTC")),
            "customer_type": _lookup(CUSTOMER_TYPES, np.concatenate(ctype)),
            "region": _lookup(REGIONS, np.concatenate(region)),
        }
    ).cast(_arrow_schema(CUSTOMER_COLUMNS))
    outcomes = _campaign_table(campaign_parts, ids) if campaign else None
    return events, customers, outcomes


_Writer: TypeAlias = pq.ParquetWriter | pa_csv.CSVWriter


def _writer(path: Path, schema: pa.Schema, fmt: SampleFormat) -> _Writer:
    if fmt == "parquet":
        return pq.ParquetWriter(path, schema, compression="zstd")
    return pa_csv.CSVWriter(path, schema)


def generate_sample(
    n_customers: int,
    out_dir: str | os.PathLike[str],
    seed: int = 42,
    start: dt.date = DEFAULT_START,
    end: dt.date = DEFAULT_END,
    fmt: SampleFormat = "parquet",
    chunk_size: int = 20_000,
    on_chunk: Callable[[int, int, int], None] | None = None,
    *,
    campaign: bool = False,
) -> SampleSummary:
    """Simulate customers and write ``events`` and ``customers`` files to ``out_dir``.

    The story behind the data is told in ``docs/sample-data.md``. Files are written chunk by
    chunk of customers and moved into place only when complete.

    Parameters
    ----------
    n_customers : int
        Number of customers, at least 1; ids are ``"C"`` plus the 1-based number zero-padded to
        the width of ``n_customers``.
    out_dir : str or os.PathLike
        Directory to write ``events.<fmt>`` and ``customers.<fmt>`` into; created if missing.
    seed : int, default 42
        Seed; the same arguments give byte-identical files.
    start, end : datetime.date
        First and last day (UTC, inclusive) of the simulated window.
    fmt : {"parquet", "csv"}, default "parquet"
        File format.
    chunk_size : int, default 20_000
        Customers simulated and written per chunk, rounded up to a multiple of
        :data:`BLOCK_SIZE`; it bounds memory and does not change the content.
    on_chunk : callable, optional
        Called after each chunk with the chunks written so far, the number of chunks and the
        events written so far.
    campaign : bool, default False
        Also write ``campaign.<fmt>``: a randomised retention campaign run at the window end on
        every customer with an order, half held out as control, with what each did in the next
        :data:`CAMPAIGN_HORIZON_DAYS` days (:data:`CAMPAIGN_COLUMNS`, then the hidden truth:
        ``uplift_type`` and the order probabilities without and with contact). The events and
        customers files are the same with or without it.

    Returns
    -------
    SampleSummary
        Counts and paths of what was written.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    window = _window(start, end)
    width = len(str(n_customers))
    blocks_per_chunk = -(-chunk_size // BLOCK_SIZE)
    n_blocks = -(-n_customers // BLOCK_SIZE)
    n_chunks = -(-n_blocks // blocks_per_chunk)
    names = ("events", "customers", "campaign") if campaign else ("events", "customers")
    paths = {name: out / f"{name}.{fmt}" for name in names}
    partial = {name: p.with_name(p.name + ".partial") for name, p in paths.items()}
    counts = np.zeros(len(EVENT_TYPES), dtype=np.int64)
    events_written = campaign_rows = 0
    with (
        _writer(partial["events"], _arrow_schema(EVENT_COLUMNS), fmt) as ev_writer,
        _writer(partial["customers"], _arrow_schema(CUSTOMER_COLUMNS), fmt) as cu_writer,
        contextlib.ExitStack() as stack,
    ):
        ca_writer = (
            stack.enter_context(_writer(partial["campaign"], _campaign_schema(), fmt))
            if campaign
            else None
        )
        for i, first in enumerate(range(0, n_blocks, blocks_per_chunk)):
            last = min(first + blocks_per_chunk, n_blocks)
            events, customers, outcomes = _chunk_tables(
                seed, first, last, n_customers, window, width, campaign
            )
            ev_writer.write_table(events)
            cu_writer.write_table(customers)
            if ca_writer is not None and outcomes is not None:
                ca_writer.write_table(outcomes)
                campaign_rows += outcomes.num_rows
            codes = pc.index_in(events["event_type"], pa.array(EVENT_TYPES)).to_numpy()
            counts += np.bincount(codes, minlength=len(EVENT_TYPES))
            events_written += events.num_rows
            if on_chunk is not None:
                on_chunk(i + 1, n_chunks, events_written)
    for name in paths:
        partial[name].replace(paths[name])
    return SampleSummary(
        customers=n_customers,
        events=events_written,
        events_path=paths["events"],
        customers_path=paths["customers"],
        events_by_type={t: int(c) for t, c in zip(EVENT_TYPES, counts, strict=True)},
        campaign_path=paths.get("campaign"),
        campaign_rows=campaign_rows,
    )


def sample_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            file_okay=False,
            help="Directory for events.<format> and customers.<format>.",
        ),
    ],
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="Number of customers.")
    ] = 5000,
    seed: Annotated[
        int, typer.Option(help="Random seed; same arguments give identical files.")
    ] = 42,
    start: Annotated[
        dt.datetime,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="First day of the window (UTC).",
            show_default=DEFAULT_START.isoformat(),
        ),
    ] = _DEFAULT_START_OPTION,
    end: Annotated[
        dt.datetime,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Last day of the window (UTC).",
            show_default=DEFAULT_END.isoformat(),
        ),
    ] = _DEFAULT_END_OPTION,
    fmt: Annotated[SampleFormat, typer.Option("--format", help="File format.")] = "parquet",
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Customers per chunk written (bounds memory).")
    ] = 20_000,
    campaign: Annotated[
        bool,
        typer.Option(
            "--campaign",
            help="Also write campaign.<format>: a randomised retention campaign with a control "
            "group at the window end (see docs/sample-data.md).",
        ),
    ] = False,
) -> None:
    """Write realistic sample events and customers (see docs/sample-data.md)."""
    # an unwritable --out (/proc/x, a read-only folder) is refused by name and reason, before the
    # simulation, not with a traceback from the first write
    check_folder(out, f"cannot write the sample into {out}", "--out")
    console = Console(stderr=True)
    progress = progress_bar(
        console,
        "[progress.description]{task.description}",
        TextColumn("{task.fields[events]:,} events"),
    )
    with progress:
        task = progress.add_task("simulating", total=None, events=0)

        def advance(done: int, total: int, events: int) -> None:
            progress.update(task, completed=done, total=total, events=events)

        try:
            summary = generate_sample(
                customers,
                out,
                seed,
                start.date(),
                end.date(),
                fmt,
                chunk_size,
                advance,
                campaign=campaign,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    console.print(
        f"wrote {summary.events:,} events of {summary.customers:,} customers to "
        f"{summary.events_path} and {summary.customers_path}"
    )
    if summary.campaign_path is not None:
        console.print(
            f"wrote the outcomes of {summary.campaign_rows:,} campaign customers to "
            f"{summary.campaign_path}"
        )
