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

from dataclasses import dataclass, field
from typing import Final, Literal

import polars as pl

__all__ = [
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
    "Column",
    "Feature",
    "FeatureGroup",
    "event_schema",
    "feature_info",
    "register",
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
    Column(
        "customer_type", pl.String(), False, "One of " + ", ".join(CUSTOMER_TYPES) + "."
    ),
    Column("region", pl.String(), False, "Free-text region."),
)
"""Known columns of the optional customers table; further columns pass through as features."""


def event_schema() -> dict[str, pl.DataType]:
    """Return the column types of a validated events frame.

    Returns
    -------
    dict of str to polars.DataType
        Every contract column, required and optional, in contract order.
    """
    return {c.name: c.dtype for c in EVENT_COLUMNS}


FeatureGroup = Literal["rfm", "engagement", "service", "loyalty", "products", "profile", "value"]
FEATURE_GROUPS: Final[tuple[str, ...]] = (
    "rfm",
    "engagement",
    "service",
    "loyalty",
    "products",
    "profile",
    "value",
)


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
        A sentence template that reads well in a reason; ``{value}`` is replaced by the formatted
        value and ``{category}`` by the category, e.g. ``"{value} unresolved complaints in the last
        90 days"``.
    dtype : str
        ``"int"``, ``"float"`` or ``"str"``.
    model_input : bool
        Whether models use it (strings such as the RFM segment are for people, not models).
    unit : str
        How ``{value}`` is formatted: ``""`` (plain number), ``"days"``, ``"money"``, ``"ratio"``
        (shown as a percentage) or ``"score"``.
    """

    name: str
    group: FeatureGroup
    description: str
    dtype: Literal["int", "float", "str"] = "float"
    model_input: bool = True
    unit: str = ""
    extra: dict[str, str] = field(default_factory=dict)


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
            if "{category}" not in template.name:
                continue
            head, tail = template.name.split("{category}")
            if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
                category = name[len(head) : len(name) - len(tail)]
                return Feature(
                    name=name,
                    group=template.group,
                    description=template.description.replace("{category}", category),
                    dtype=template.dtype,
                    model_input=template.model_input,
                    unit=template.unit,
                    extra={"category": category},
                )
    raise KeyError(f"{name!r} is not a registered feature")


FEATURE_SET_VERSION: Final = "1"
"""Bumped whenever a feature's meaning changes; models record it and serving checks it."""
