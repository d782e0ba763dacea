"""The events contract and the feature registry, declared once.

The validator, the sample generator, the feature code, the docs and the tests all read the
declarations in this module; nothing else restates them.

Events
------
One row per interaction. ``customer_id``, ``ts`` and ``event_type`` are required on every row;
the other columns are optional and some event types need some of them (``EVENT_REQUIRES``).
Naive timestamps mean UTC; timestamps with an offset are converted to UTC.

``ref_id`` is a shared key: an ``order`` carries its order id and a ``return`` the id of the order
it returns; a ``complaint`` carries its ticket id and the ``complaint_resolved`` that closes it the
same ticket id.

Time
----
Snapshots are taken *as of* a calendar day (UTC). A snapshot as of ``D`` sees every event whose
timestamp falls on or before ``D`` (``date(ts) <= D``), and windows such as "last 30 days" cover the
days ``(D - 30, D]``. Labels for a cutoff ``c`` and horizon ``H`` use the days ``(c, c + H]``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, get_args

import polars as pl

__all__ = [
    "ACTIVITY_EVENTS",
    "CATEGORY_FEATURE_PREFIX",
    "CHANNELS",
    "CUSTOMER_COLUMNS",
    "CUSTOMER_TYPES",
    "EVENT_COLUMNS",
    "EVENT_REQUIRES",
    "EVENT_TYPES",
    "FEATURES",
    "FEATURE_GROUPS",
    "FEATURE_SET_VERSION",
    "MISSING",
    "OPTIONAL_OUTCOME_COLUMNS",
    "ORDER_EVENTS",
    "OUTCOME_COLUMNS",
    "RFM_WINDOWS",
    "SERVICE_EVENTS",
    "WHEN_MISSING",
    "Column",
    "Feature",
    "FeatureGroup",
    "FeatureUnit",
    "closest",
    "contract_markdown",
    "counted",
    "event_schema",
    "feature_info",
    "feature_table_markdown",
    "is_feature",
    "quoted_near",
    "register",
    "snapshot_features",
]


@dataclass(frozen=True)
class Column:
    """One column of an input table.

    Parameters
    ----------
    name : str
        Column name as it appears in the file.
    dtype : polars.DataType
        The type the column is read as after validation.
    required : bool
        Whether every file must have the column.
    description : str
        What the column holds; shown in the README and in validation errors.
    """

    name: str
    dtype: pl.DataType
    required: bool
    description: str


EVENT_TYPES: Final[tuple[str, ...]] = (
    "order",
    "return",
    "visit",
    "email_sent",
    "email_open",
    "email_click",
    "sms_sent",
    "sms_reply",
    "call",
    "complaint",
    "complaint_resolved",
    "survey",
    "referral",
    "review",
    "subscribe",
    "cancel",
)

ORDER_EVENTS: Final[tuple[str, ...]] = ("order", "return")
"""Event types of buying: orders and the returns of orders."""

SERVICE_EVENTS: Final[tuple[str, ...]] = ("complaint", "complaint_resolved")
"""Event types of service tickets: a complaint and the resolution that closes it."""

ACTIVITY_EVENTS: Final[tuple[str, ...]] = tuple(
    t for t in EVENT_TYPES if t not in ORDER_EVENTS + SERVICE_EVENTS
)
"""Every other event type: visits, messages, calls, surveys, reviews, referrals, subscriptions."""

CHANNELS: Final[tuple[str, ...]] = (
    "web",
    "app",
    "store",
    "phone",
    "sms",
    "email",
    "fax",
    "service_center",
    "partner",
)

CUSTOMER_TYPES: Final[tuple[str, ...]] = ("consumer", "business", "channel_partner")

UTC_TS: Final = pl.Datetime("us", "UTC")

EVENT_COLUMNS: Final[tuple[Column, ...]] = (
    Column("customer_id", pl.String(), True, "Customer identifier (string)."),
    Column("ts", UTC_TS, True, "When the event happened; naive timestamps mean UTC."),
    Column("event_type", pl.String(), True, "One of the event types listed below."),
    Column("channel", pl.String(), False, "Where it happened: " + ", ".join(CHANNELS) + "."),
    Column(
        "amount", pl.Float64(), False, "Revenue, >= 0; required for `order` and `return` events."
    ),
    Column("margin", pl.Float64(), False, "Gross margin of an order (may be negative)."),
    Column("quantity", pl.Float64(), False, "Units in an order or return, >= 0."),
    Column("category", pl.String(), False, "Product category of an order or return."),
    Column(
        "score",
        pl.Float64(),
        False,
        "Survey satisfaction 0-10 (`survey`) or review rating 1-5 (`review`).",
    ),
    Column(
        "ref_id",
        pl.String(),
        False,
        "Shared key: order id on `order`/`return`, ticket id on `complaint`/`complaint_resolved`.",
    ),
)

EVENT_REQUIRES: Final[dict[str, tuple[str, ...]]] = {
    "order": ("amount",),
    "return": ("amount",),
    "complaint_resolved": ("ref_id",),
    "survey": ("score",),
    "review": ("score",),
}
"""Columns that must be present and non-null for rows of the given event type."""

SCORE_RANGES: Final[dict[str, tuple[float, float]]] = {"survey": (0.0, 10.0), "review": (1.0, 5.0)}
"""Allowed ``score`` range per event type (inclusive)."""

CUSTOMER_COLUMNS: Final[tuple[Column, ...]] = (
    Column("customer_id", pl.String(), True, "Customer identifier, as in the events."),
    Column("signup_ts", UTC_TS, False, "When the customer signed up; naive means UTC."),
    Column("customer_type", pl.String(), False, "One of " + ", ".join(CUSTOMER_TYPES) + "."),
    Column("region", pl.String(), False, "Free-text region."),
)
"""Known columns of the optional customers table; further columns pass through as features."""

OUTCOME_COLUMNS: Final[dict[str, pl.DataType]] = {
    "customer_id": pl.String(),
    "offer": pl.String(),
    "control": pl.Boolean(),
    "responded": pl.Boolean(),
    "ordered": pl.Boolean(),
    "revenue": pl.Float64(),
}
"""Required columns of a campaign's outcomes table and their types.

The table ``guanxi campaign record`` reads (see :mod:`models.campaigns`, which validates it);
declared here beside the events and customers so that the events validator knows it too."""

OPTIONAL_OUTCOME_COLUMNS: Final[dict[str, pl.DataType]] = {
    "campaign": pl.String(),
    "margin": pl.Float64(),
    "segment": pl.String(),
    "value_tier": pl.String(),
    "churn_probability": pl.Float64(),
    "propensity": pl.Float64(),
}
"""Optional columns of an outcomes table, read when present; others pass through untouched."""


def event_schema() -> dict[str, pl.DataType]:
    """Return the column types of a validated events frame.

    Returns
    -------
    dict of str to polars.DataType
        Every contract column, required and optional, in contract order.
    """
    return {c.name: c.dtype for c in EVENT_COLUMNS}


FeatureGroup = Literal["rfm", "engagement", "service", "loyalty", "products", "profile", "value"]
FEATURE_GROUPS: Final[tuple[str, ...]] = get_args(FeatureGroup)
"""The feature groups, in the order of :data:`FeatureGroup` (one list, not two)."""

FeatureUnit = Literal["count", "days", "money", "ratio", "score", "trend", "flag", "text"]

_POLARS_DTYPES: Final[dict[str, pl.DataType]] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "str": pl.String(),
}


@dataclass(frozen=True)
class Feature:
    """A registered feature.

    Parameters
    ----------
    name : str
        Column name in a snapshot. Per-category features use a ``{category}`` placeholder.
    group : FeatureGroup
        The business concept the feature belongs to; reasons are grouped by it.
    description : str
        A phrase that reads well in a reason; ``{value}`` is replaced by the formatted value and
        ``{category}`` by the category, e.g. ``"{value} unresolved complaints"``.
    dtype : str
        ``"int"``, ``"float"`` or ``"str"``; the snapshot column has the matching Polars type
        (``Int64``, ``Float64``, ``String``).
    unit : FeatureUnit
        How ``{value}`` is formatted (see :meth:`format_value`): ``"count"``, ``"days"``,
        ``"money"``, ``"ratio"`` (shown as a percentage), ``"score"``, ``"trend"`` (signed, -1 to
        +1), ``"flag"`` (0/1 shown as no/yes) or ``"text"``.
    model_input : bool
        Whether models use it (strings such as the RFM segment are for people, not models).
    default : int or None
        The value for a customer who has none of the events the feature reads (``0`` for counts
        and sums); ``None`` means such a customer gets a null (rates, means, days since).
    extra : dict of str to str
        Resolved template parameters, e.g. ``{"category": "garden"}`` for a per-category column.
    fitted : bool
        Whether the feature comes from a model fitted over all customers of the snapshot day
        (the ``value`` family: BG/NBD's P(alive) and expected purchases, :mod:`models.clv.family`)
        rather than from the customer's own events: :func:`features.snapshot.build_snapshot`
        leaves it out, and the jobs that build snapshots for models add it.
    """

    name: str
    group: FeatureGroup
    description: str
    dtype: Literal["int", "float", "str"] = "float"
    unit: FeatureUnit = "count"
    model_input: bool = True
    default: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    fitted: bool = False

    @property
    def polars_dtype(self) -> pl.DataType:
        """The Polars type of the feature's snapshot column."""
        return _POLARS_DTYPES[self.dtype]

    @property
    def is_template(self) -> bool:
        """Whether the name holds a ``{category}`` placeholder (one column per category)."""
        return "{category}" in self.name

    def column(self, category: str) -> str:
        """Return the snapshot column of a per-category feature for one (sanitised) category.

        Parameters
        ----------
        category : str
            A category name already sanitised to ``[a-z0-9_]``.

        Returns
        -------
        str
            E.g. ``"cat_garden_orders"`` for the template ``"cat_{category}_orders"``.
        """
        return self.name.replace("{category}", category)

    def format_value(self, value: float | str | None) -> str:
        """Format a value for a reason according to :attr:`unit`.

        Parameters
        ----------
        value : float, str or None
            The feature's value for one customer; ``None`` and NaN read as ``"unknown"``.

        Returns
        -------
        str
            E.g. ``"3"``, ``"12.5"``, ``"1,234.50"``, ``"40%"``, ``"+0.50"``, ``"yes"``.
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        if isinstance(value, str) or self.unit == "text":
            return str(value)
        if self.unit == "money":
            return f"{value:,.2f}"
        if self.unit == "ratio":
            return f"{value:.0%}"
        if self.unit == "trend":
            return f"{value:+.2f}"
        if self.unit == "flag":
            return "yes" if value else "no"
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"

    def describe(self, value: float | str | None) -> str:
        """Render the description with a formatted value, as shown in a reason.

        Parameters
        ----------
        value : float, str or None
            The feature's value for one customer.

        Returns
        -------
        str
            E.g. ``"3 unresolved complaints in the last 90 days"``.
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            template = self.extra.get("template", self.name)
            if template in WHEN_MISSING:
                return WHEN_MISSING[template].replace("{category}", self.extra.get("category", ""))
            return self.description.replace("{value}", _UNKNOWN.get(self.unit, "unknown"))
        text = self.description.replace("{value}", self.format_value(value))
        if self.unit in ("count", "days") and abs(float(value)) == 1:
            return _COUNTED.sub(_singular, text, count=1)
        return text


_UNKNOWN: Final[dict[str, str]] = {
    "count": "an unknown number of",
    "days": "an unknown number of",
    "money": "an unknown amount",
}
"""How a missing value reads in a description without a :data:`WHEN_MISSING` sentence."""

_COUNTED: Final = re.compile(r"(?<![\d.,])([-+]?1 (?:[\w-]+ )?)([\w-]+?)(ies|s)\b")
"""A count of one and the plural noun it counts (the word after it, or the one after that)."""


def _singular(match: re.Match[str]) -> str:
    """Make the counted noun of a count of one singular: ``1 orders`` -> ``1 order``."""
    count, stem, ending = match.groups()
    return count + stem + ("y" if ending == "ies" else "")


MISSING: Final = "—"
"""What the CLI prints for a figure it has not got (guanxi target, value, campaign report, models),
the mark of the reviewer pages' tables: ``guanxi target`` and ``guanxi campaign report`` printed
``-``, which read as a minus sign, beside ``guanxi value``'s ``—``. Here, where every layer can
read it (``guanxi models`` without loading the optimiser), beside the formatters of
:mod:`features.formatting` that write it."""


def counted(n: int, nouns: str) -> str:
    """Say a count with its noun, singular for one, as the feature descriptions do.

    Parameters
    ----------
    n : int
        The count, written with thousands separators.
    nouns : str
        The plural noun, optionally after one word, e.g. ``"segments"``, ``"repeat buyers"``,
        ``"categories"``.

    Returns
    -------
    str
        E.g. ``"1 segment"``, ``"7 segments"``, ``"1,200 repeat buyers"``, ``"1 category"``.
    """
    text = f"{n:,} {nouns}"
    return _COUNTED.sub(_singular, text, count=1) if n == 1 else text


def closest(name: str, known: Sequence[str], cutoff: float = 0.6) -> str | None:
    """Return the known name a misspelt or miscased one is closest to, for a "did you mean".

    Parameters
    ----------
    name : str
        The name given, e.g. ``"chrun"`` or ``"At_Risk"``.
    known : sequence of str
        The names it should be one of.
    cutoff : float, default 0.6
        Least similarity (:func:`difflib.get_close_matches`) of a name offered.

    Returns
    -------
    str or None
        The known name equal to ``name`` but for case and surrounding spaces, else the most
        similar one whatever the case of either (``"churn"`` for ``"chrun"`` and for
        ``"CHRUN"``); None when none is similar enough.
    """
    plain = name.strip().lower()
    # compared in lower case: difflib alone found nothing near a misspelt name in capitals
    # ("RETENTION_EMIAL" shares no letter with "retention_email" but the underscore)
    lowered: dict[str, str] = {}
    for k in known:
        lowered.setdefault(k.lower(), k)
    if plain in lowered:
        return lowered[plain]
    near = difflib.get_close_matches(plain, list(lowered), n=1, cutoff=cutoff)
    return lowered[near[0]] if near else None


def quoted_near(name: str, known: Sequence[str]) -> str:
    """Quote an unknown name with the known one it may be meant for (:func:`closest`).

    Parameters
    ----------
    name : str
        The unknown name, e.g. ``"chrun"``.
    known : sequence of str
        The names it should be one of.

    Returns
    -------
    str
        E.g. ``"'chrun' (is it 'churn'?)"``; ``"'upsell'"`` when no known name is near.
    """
    near = closest(name, known)
    return f"{name!r} (is it {near!r}?)" if near else repr(name)


FEATURES: dict[str, Feature] = {}
"""Every registered feature by name (per-category templates keyed by their template name)."""

CATEGORY_FEATURE_PREFIX: Final = "cat_"


def register(*features: Feature) -> None:
    """Add features to the registry.

    Parameters
    ----------
    *features : Feature
        Features to register; each name must be new.

    Raises
    ------
    ValueError
        If a name is already registered.
    """
    for f in features:
        if f.name in FEATURES:
            raise ValueError(f"feature {f.name!r} is registered twice")
        FEATURES[f.name] = f


def _windows(
    template: str, description: str, days: tuple[int, ...], **kwargs: Any
) -> tuple[Feature, ...]:
    """Declare one feature per trailing window; ``{days}`` is filled in name and description."""
    return tuple(
        Feature(
            name=template.replace("{days}", str(n)),
            description=description.replace("{days}", str(n)),
            **kwargs,
        )
        for n in days
    )


_COUNT: Final[dict[str, Any]] = {"dtype": "int", "unit": "count", "default": 0}
_MONEY: Final[dict[str, Any]] = {"dtype": "float", "unit": "money", "default": 0}
_DAYS: Final[dict[str, Any]] = {"dtype": "int", "unit": "days"}
_RATIO: Final[dict[str, Any]] = {"dtype": "float", "unit": "ratio"}

RFM_WINDOWS: Final[tuple[int, ...]] = (30, 90, 180, 365)
"""Trailing windows (days) of the order counts and spend."""

register(
    # --- recency, frequency, monetary (rfm.py) ---
    Feature("recency_days", "rfm", "{value} days since the last order", **_DAYS),
    *_windows("orders_{days}d", "{value} orders in the last {days} days", RFM_WINDOWS,
              group="rfm", **_COUNT),
    Feature("orders_total", "rfm", "{value} orders in total", **_COUNT),
    *_windows("spend_{days}d", "{value} spent in the last {days} days", RFM_WINDOWS,
              group="rfm", **_MONEY),
    Feature("spend_total", "rfm", "{value} spent in total", **_MONEY),
    Feature("avg_order_value", "rfm", "average order value of {value}", unit="money"),
    Feature("margin_total", "rfm", "{value} gross margin in total", **_MONEY),
    Feature("margin_365d", "rfm", "{value} gross margin in the last 365 days", **_MONEY),
    Feature("r_score", "rfm", "recency score {value} of 5", dtype="int", unit="score"),
    Feature("f_score", "rfm", "frequency score {value} of 5", dtype="int", unit="score"),
    Feature("m_score", "rfm", "monetary score {value} of 5", dtype="int", unit="score"),
    Feature("rfm_segment", "rfm", "RFM segment {value}", dtype="str", unit="text",
            model_input=False),
    # --- purchase rhythm (rfm.py) ---
    Feature("tenure_days", "rfm", "customer for {value} days", **_DAYS),
    Feature("gap_mean_days", "rfm", "{value} days between order days on average", unit="days"),
    Feature("gap_std_days", "rfm", "gaps between orders vary by {value} days", unit="days"),
    Feature("overdue_ratio", "rfm", "{value} of the usual gap between orders since the last one",
            **_RATIO),
    Feature("orders_trend_90d", "rfm", "order trend {value} (last 90 days against the 90 before)",
            unit="trend", default=0),
    Feature("spend_trend_90d", "rfm", "spend trend {value} (last 90 days against the 90 before)",
            unit="trend", default=0),
    # --- engagement (engagement.py) ---
    *_windows("visits_{days}d", "{value} visits in the last {days} days", (30, 90, 365),
              group="engagement", **_COUNT),
    Feature("visits_web_90d", "engagement", "{value} web visits in the last 90 days", **_COUNT),
    Feature("visits_app_90d", "engagement", "{value} app visits in the last 90 days", **_COUNT),
    Feature("visits_store_90d", "engagement", "{value} store visits in the last 90 days",
            **_COUNT),
    Feature("emails_sent_90d", "engagement", "{value} e-mails sent in the last 90 days",
            **_COUNT),
    Feature("email_open_rate_90d", "engagement", "{value} of e-mails opened in the last 90 days",
            **_RATIO),
    Feature("email_click_rate_90d", "engagement",
            "{value} of e-mails clicked in the last 90 days", **_RATIO),
    Feature("email_open_rate_365d", "engagement",
            "{value} of e-mails opened in the last 365 days", **_RATIO),
    Feature("sms_sent_90d", "engagement", "{value} text messages sent in the last 90 days",
            **_COUNT),
    Feature("sms_reply_rate_90d", "engagement",
            "{value} of text messages answered in the last 90 days", **_RATIO),
    Feature("calls_90d", "engagement", "{value} calls in the last 90 days", **_COUNT),
    Feature("days_since_last_engagement", "engagement",
            "{value} days since the last visit, open, click, reply or call", **_DAYS),
    Feature("channels_used_365d", "engagement", "{value} channels used in the last 365 days",
            **_COUNT),
    # --- service (service.py) ---
    *_windows("complaints_{days}d", "{value} complaints in the last {days} days", (90, 365),
              group="service", **_COUNT),
    Feature("complaints_total", "service", "{value} complaints in total", **_COUNT),
    Feature("unresolved_complaints", "service", "{value} unresolved complaints", **_COUNT),
    Feature("unresolved_complaints_90d", "service",
            "{value} unresolved complaints in the last 90 days", **_COUNT),
    Feature("resolution_days_mean", "service", "complaints took {value} days to resolve on average",
            unit="days"),
    Feature("days_since_last_complaint", "service", "{value} days since the last complaint",
            **_DAYS),
    Feature("survey_last_score", "service", "last survey score {value} of 10", unit="score"),
    Feature("survey_mean_score", "service", "average survey score {value} of 10", unit="score"),
    Feature("returns_365d", "service", "{value} returns in the last 365 days", **_COUNT),
    Feature("return_amount_365d", "service", "{value} returned in the last 365 days", **_MONEY),
    Feature("return_rate", "service", "{value} of spend returned", **_RATIO),
    # --- loyalty (loyalty.py) ---
    Feature("referrals_total", "loyalty", "{value} referrals in total", **_COUNT),
    Feature("referrals_365d", "loyalty", "{value} referrals in the last 365 days", **_COUNT),
    Feature("reviews_total", "loyalty", "{value} reviews written", **_COUNT),
    Feature("review_mean_rating", "loyalty", "average review rating {value} of 5", unit="score"),
    Feature("is_subscribed", "loyalty", "subscribed: {value}", dtype="int", unit="flag",
            default=0),
    Feature("cancels_total", "loyalty", "{value} subscription cancellations", **_COUNT),
    # --- products (products.py) ---
    Feature("categories_distinct", "products", "{value} product categories bought", **_COUNT),
    Feature(CATEGORY_FEATURE_PREFIX + "{category}_orders", "products",
            "{value} orders in {category}", **_COUNT),
    Feature(CATEGORY_FEATURE_PREFIX + "{category}_share", "products",
            "{value} of spend in {category}", **_RATIO),
    # --- profile, from the customers table (profile.py) ---
    Feature("is_business", "profile", "business customer: {value}", dtype="int", unit="flag",
            default=0),
    Feature("is_channel_partner", "profile", "channel partner: {value}", dtype="int",
            unit="flag", default=0),
    Feature("signup_tenure_days", "profile", "signed up {value} days ago", **_DAYS),
    Feature("region", "profile", "region {value}", dtype="str", unit="text", model_input=False),
    # --- value, fitted over all customers of the day (models/clv/family.py) ---
    Feature("p_alive", "value", "{value} chance of still being an active buyer (BG/NBD)",
            **_RATIO, fitted=True),
    Feature("expected_purchases_90d", "value",
            "{value} purchases expected in the next 90 days (BG/NBD)", unit="count", fitted=True),
)  # fmt: skip

WHEN_MISSING: Final[dict[str, str]] = {
    "recency_days": "no order yet",
    "avg_order_value": "no order yet, so no average order value",
    "r_score": "no order yet, so no recency score",
    "f_score": "no order yet, so no frequency score",
    "m_score": "no order yet, so no monetary score",
    "tenure_days": "no first activity known",
    "gap_mean_days": "fewer than two order days, so no usual gap between orders",
    "gap_std_days": "too few orders to tell how regular the gaps are",
    "overdue_ratio": "no usual gap between orders to compare the last one with",
    "email_open_rate_90d": "no e-mails sent in the last 90 days",
    "email_click_rate_90d": "no e-mails sent in the last 90 days",
    "email_open_rate_365d": "no e-mails sent in the last 365 days",
    "sms_reply_rate_90d": "no text messages sent in the last 90 days",
    "days_since_last_engagement": "no visit, open, click, reply or call yet",
    "resolution_days_mean": "no complaint resolved yet",
    "days_since_last_complaint": "no complaint so far",
    "survey_last_score": "no survey answered",
    "survey_mean_score": "no survey answered",
    "return_rate": "no spend, so no return rate",
    "review_mean_rating": "no review written",
    "cat_{category}_share": "no spend, so no share of spend in {category}",
    "signup_tenure_days": "no sign-up date known",
    "p_alive": "no order yet, so no chance of still buying",
    "expected_purchases_90d": "no order yet, so no purchase forecast",
}
"""What a reason says for a feature whose value is missing (the default ``None`` above)."""


def snapshot_features() -> list[Feature]:
    """Return the registered features :func:`features.snapshot.build_snapshot` computes.

    Returns
    -------
    list of Feature
        Every registered feature but the ``fitted`` ones, in registry order (templates once).
    """
    return [f for f in FEATURES.values() if not f.fitted]


def feature_info(name: str) -> Feature:
    """Look a snapshot column up in the registry, resolving per-category names.

    Parameters
    ----------
    name : str
        A snapshot column, e.g. ``"recency_days"`` or ``"cat_garden_orders"``.

    Returns
    -------
    Feature
        The registered feature; for a per-category column, the template with ``{category}``
        filled in.

    Raises
    ------
    KeyError
        If the column is not a registered feature.
    """
    if name in FEATURES:
        return FEATURES[name]
    if name.startswith(CATEGORY_FEATURE_PREFIX):
        for template in FEATURES.values():
            if not template.is_template:
                continue
            head, tail = template.name.split("{category}")
            if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
                category = name[len(head) : len(name) - len(tail)]
                return replace(
                    template,
                    name=name,
                    description=template.description.replace("{category}", category),
                    extra={"category": category, "template": template.name},
                )
    raise KeyError(f"{name!r} is not a registered feature")


def is_feature(name: str) -> bool:
    """Return whether a snapshot column is a registered feature (per-category names included).

    Parameters
    ----------
    name : str
        A column name.

    Returns
    -------
    bool
        ``True`` if :func:`feature_info` resolves it.
    """
    try:
        feature_info(name)
    except KeyError:
        return False
    return True


def _reads(feature: Feature) -> str:
    """Say whether models read a feature: yes, no, or only where a task's spec asks (fitted)."""
    if not feature.model_input:
        return "no"
    return "where a task's spec reads the family" if feature.fitted else "yes"


def feature_table_markdown() -> str:
    """Render the registry as a Markdown table for the README.

    Returns
    -------
    str
        One row per registered feature (templates as ``cat_{category}_orders``), in registry
        order, with its group, type, whether models use it, its value when the customer has no
        such events, and its description with ``{value}`` shown as ``N``.
    """
    lines = [
        "| feature | group | type | model input | when no events | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for f in FEATURES.values():
        default = "null" if f.default is None else str(f.default)
        meaning = f.description.replace("{value}", "N").replace("{category}", "<category>")
        lines.append(
            f"| `{f.name}` | {f.group} | {f.dtype} ({f.unit}) | "
            f"{_reads(f)} | {default} | {meaning} |"
        )
    return "\n".join(lines) + "\n"


def contract_markdown() -> str:
    """Render the events and customers contracts as Markdown for the README.

    Returns
    -------
    str
        A table of event columns, the event types with the columns each one needs, and a table
        of the known customers columns.
    """

    def kind(dtype: pl.DataType) -> str:
        if dtype == UTC_TS:
            return "timestamp"
        return "number" if dtype.is_numeric() else "string"

    lines = ["| column | type | required | meaning |", "|---|---|---|---|"]
    for c in EVENT_COLUMNS:
        lines.append(
            f"| `{c.name}` | {kind(c.dtype)} | {'yes' if c.required else 'no'} | {c.description} |"
        )
    lines += ["", "| event type | also needs |", "|---|---|"]
    for t in EVENT_TYPES:
        needs = ", ".join(f"`{c}`" for c in EVENT_REQUIRES.get(t, ())) or "-"
        if t in SCORE_RANGES:
            low, high = SCORE_RANGES[t]
            needs += f" (in {low:g}-{high:g})"
        lines.append(f"| `{t}` | {needs} |")
    lines += ["", "| customers column | type | required | meaning |", "|---|---|---|---|"]
    for c in CUSTOMER_COLUMNS:
        lines.append(
            f"| `{c.name}` | {kind(c.dtype)} | {'yes' if c.required else 'no'} | {c.description} |"
        )
    return "\n".join(lines) + "\n"


FEATURE_SET_VERSION: Final = "1"
"""Bumped whenever a feature's meaning changes; models record it and serving checks it."""
