"""Point-in-time customer snapshots: every feature family, one row per customer.

:func:`build_snapshot` makes one lazy ``group_by`` pass over all the events on or before the
snapshot day for the features that read many event types (first event, channels, engagement,
loyalty, returns: :func:`~features.engagement.engagement_aggregations` and its siblings), and
one over each smaller subset for the rest (RFM and rhythm on orders, complaints and surveys,
per-category orders, the latter in the orders' own pass). It collects them together so Polars
reads and prepares the events once, sorts the first result by ``customer_id`` and puts the
others and the profile features of the customers table beside it in that order: their rows are
matched on the key alone and each column gathered once, so no wide frame is copied to be sorted
or joined.
Float sums and means are added in integers (:func:`features.window.exact_sum`), so the same events
give the same snapshot bit for bit, in memory, from a scan, in buckets or ranges, run after run;
a build (or bucket) with a customer whose amounts add up to 2**62 or more, beyond those integers,
is built again adding floats (:func:`features.window.float_sums`), as exact but for the last bits.
Missing values follow the registry: a customer without events of a family gets the feature's
``default`` (0 for counts and sums) or null (rates, means, days since).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path

import polars as pl

from features.contracts import CATEGORY_FEATURE_PREFIX, feature_info, is_feature, snapshot_features
from features.engagement import channels_used, engagement_aggregations
from features.loyalty import loyalty_aggregations
from features.products import (
    category_names,
    category_slugs,
    product_aggregations,
    product_features,
)
from features.profile import profile_features
from features.rfm import RFM_SCORES, order_features, rfm_segment, score
from features.service import return_aggregations, return_rate, service_features
from features.store import CustomerRanges, sorted_ranges, spill_partitions
from features.window import (
    AGE,
    ID,
    fixed_point,
    float_sums,
    prepare_events,
    rate,
    split_loads,
)

__all__ = [
    "EVENTS_PER_BUCKET",
    "KEYS",
    "buckets_for",
    "build_snapshot",
    "build_snapshot_by_range",
    "complete_categories",
    "completion_columns",
    "lacking_categories",
    "model_input_columns",
    "passthrough_columns",
]

KEYS: tuple[str, str] = (ID, "as_of")
"""The key columns that lead every snapshot."""

EVENTS_PER_BUCKET = 8_000_000
"""Events per hash bucket of ``customer_id`` that :func:`buckets_for` aims at."""

_BUCKET = "_guanxi_bucket"


def buckets_for(n_events: int) -> int:
    """Return how many hash buckets of ``customer_id`` to build ``n_events`` events in.

    Parameters
    ----------
    n_events : int
        Events of the snapshot.

    Returns
    -------
    int
        ``ceil(n_events / EVENTS_PER_BUCKET)``, at least 1.
    """
    return max(1, -(-n_events // EVENTS_PER_BUCKET))


def _feature_columns(categories: Sequence[str]) -> list[str]:
    """List the registered feature columns in registry order, templates expanded per category."""
    return [
        col
        for f in snapshot_features()
        for col in ([f.column(c) for c in categories] if f.is_template else [f.name])
    ]


def build_snapshot(
    events: pl.LazyFrame | pl.DataFrame,
    customers: pl.LazyFrame | pl.DataFrame | None,
    as_of: date,
    categories: Sequence[str] | None = None,
    buckets: int = 1,
    on_bucket: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Build the feature snapshot of every customer as of a calendar day.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events (``features.contracts.event_schema()``); only those with
        ``date(ts) <= as_of`` are read.
    customers : polars.LazyFrame or polars.DataFrame, optional
        The customers table (``customer_id``, optional ``signup_ts``, ``customer_type``,
        ``region``, further columns passed through); ``None`` when there is none.
    as_of : datetime.date
        The snapshot day (UTC).
    categories : sequence of str, optional
        Categories that get ``cat_{category}_orders`` and ``cat_{category}_share`` columns,
        sanitised to ``[a-z0-9_]`` (see :mod:`features.products`); ``None`` takes the categories
        of the orders up to ``as_of``, sorted. Pass the training categories when scoring so the
        columns match.
    buckets : int, default 1
        Build the customers of each bucket of ``customer_id`` apart (their events and
        customers rows filtered from the inputs), so the working memory is that of one bucket;
        the categories are those of all the events and the RFM scores rank every customer, as
        with one bucket, so the result is the same. :func:`buckets_for` sizes it by the events.
        Events given as a ``LazyFrame`` (e.g. ``polars.scan_parquet``) are never held whole:
        if they are in ``customer_id`` order (one streaming pass over that column checks it,
        :func:`features.store.sorted_ranges`) the buckets are ranges of ``customer_id`` of
        about equal events, each read from the scan itself (a Parquet scan skips the row
        groups outside the range); otherwise one streaming pass writes them to temporary
        Parquet files partitioned by a hash bucket, and each bucket is then built from its own
        files. A ``DataFrame`` is split in memory by hash bucket.
    on_bucket : callable, optional
        With ``buckets > 1``, called after each bucket with the buckets built so far and
        ``buckets`` (e.g. to advance a progress bar).

    Returns
    -------
    polars.DataFrame
        One row per customer with at least one event on or before ``as_of``, sorted by
        ``customer_id``: ``customer_id``, ``as_of`` (Date), the registered features in registry
        order (typed as registered), then the customers table's further columns. Customers
        without events up to ``as_of`` are absent.

    Raises
    ------
    TypeError
        If ``as_of`` is not a ``datetime.date`` (a ``datetime`` is refused too).
    ValueError
        If the customers table repeats a ``customer_id`` or has a column named like a feature,
        or ``buckets`` is not positive.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be positive, got {buckets}")
    seen = prepare_events(events, as_of)
    names = category_names(seen)
    cats = sorted(set(names.values())) if categories is None else category_slugs(categories)
    if buckets > 1:
        return _by_bucket(events, customers, as_of, cats, buckets, on_bucket)
    profile = profile_features(customers, as_of)
    extras = [c for c in profile.columns if c != ID and not is_feature(c)]
    events_pass = (
        seen.with_columns(fixed_point("amount"), fixed_point("score"))
        .group_by(ID)
        .agg(
            pl.col(AGE).max().alias("_first_age"),
            channels_used(365).alias("channels_used_365d"),
            *engagement_aggregations(),
            *loyalty_aggregations(),
            *return_aggregations(),
        )
        .sort(ID)
    )
    frames = pl.collect_all(
        [
            events_pass,
            # the product features are aggregated in the orders' group_by: one pass over them
            product_features(order_features(seen, product_aggregations(names, cats)), names, cats),
            service_features(seen),
        ]
    )
    checked = [split_loads(frame) for frame in frames]
    if not all(fits for _, fits in checked):  # a customer's amounts beyond the integers
        with float_sums():
            return build_snapshot(events, customers, as_of, categories)
    frames = [frame for frame, _ in checked]
    del checked
    frames.append(profile)
    del profile
    columns = _feature_columns(cats)
    joined = _aligned(frames, typed=set(columns) - {"tenure_days", "return_rate"})
    return joined.with_columns(
        _typed("tenure_days", pl.max_horizontal("_first_age", "signup_tenure_days")),
        _typed("return_rate", return_rate()),
    ).select(ID, pl.lit(as_of, pl.Date).alias("as_of"), *columns, *extras)


def lacking_categories(snapshot: pl.DataFrame, categories: Iterable[str]) -> list[str]:
    """Return the categories a snapshot has no ``cat_{category}_orders`` column of.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A snapshot (only its column names are read).
    categories : iterable of str
        Categories, sanitised as :func:`build_snapshot` sanitises them.

    Returns
    -------
    list of str
        Those of the sanitised ``categories`` without a column, in their first-seen order.
    """
    have = set(_snapshot_categories(snapshot))
    return [c for c in category_slugs(categories) if c not in have]


def _snapshot_categories(snapshot: pl.DataFrame) -> list[str]:
    """List the categories that have a ``cat_{category}_orders`` column, in column order."""
    orders = "_orders"
    return [
        c.removeprefix(CATEGORY_FEATURE_PREFIX).removesuffix(orders)
        for c in snapshot.columns
        if c.startswith(CATEGORY_FEATURE_PREFIX) and c.endswith(orders) and is_feature(c)
    ]


def completion_columns(lacking: Sequence[str]) -> list[pl.Expr]:
    """Give the ``cat_{category}_*`` columns of categories no order of a snapshot's has.

    A snapshot is built from every order up to its day with a column of each of their
    categories at least (:func:`build_snapshot`), so a category it has no column of had no order
    by anyone up to that day: :func:`features.products.product_features` then gives every
    customer 0 orders of it (``cat_{category}_orders``) and a share of 0, null without any spend
    (``cat_{category}_share``, ``spend_total`` not positive).

    Parameters
    ----------
    lacking : sequence of str
        Sanitised categories the snapshot has no column of (:func:`lacking_categories`).

    Returns
    -------
    list of polars.Expr
        Two typed columns a category, ``cat_{category}_orders`` then ``cat_{category}_share``,
        to evaluate on the snapshot (the share reads its ``spend_total``).
    """
    share = rate(pl.lit(0.0), pl.col("spend_total"))  # no spend in it: 0 of any spend
    return [
        expr
        for c in lacking
        for expr in (_typed(f"cat_{c}_orders", pl.lit(0)), _typed(f"cat_{c}_share", share))
    ]


def complete_categories(snapshot: pl.DataFrame, categories: Sequence[str]) -> pl.DataFrame:
    """Give a snapshot the ``cat_{category}_*`` columns of the categories it lacks, exactly.

    The columns are :func:`completion_columns`' (0 orders, a 0 share, null without spend),
    added where a build given the snapshot's categories and these, sorted, puts them, so the
    result equals that build (``guanxi score``'s of a Spark table with its models' categories,
    :func:`pipelines.score.snapshot_for`). A stored snapshot read alone needs no completion:
    :func:`models.tasks.model_frame` completes the categories a model reads.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A snapshot as :func:`build_snapshot` builds it (the store's, e.g.).
    categories : sequence of str
        Categories that must have columns, sanitised as :func:`build_snapshot` sanitises them.

    Returns
    -------
    polars.DataFrame
        ``snapshot`` itself when it has them all; else with their columns, the categories'
        columns in sorted order of categories, every other column as it was.
    """
    lacking = lacking_categories(snapshot, categories)
    if not lacking:
        return snapshot
    columns = _feature_columns(sorted({*_snapshot_categories(snapshot), *lacking}))
    added = snapshot.with_columns(completion_columns(lacking))
    extras = [c for c in snapshot.columns if c not in KEYS and c not in columns]
    return added.select(*KEYS, *columns, *extras)


def _typed(name: str, column: pl.Expr) -> pl.Expr:
    """Give a feature's column its registered default for nulls and its registered type."""
    feature = feature_info(name)
    if feature.default is not None:
        column = column.fill_null(feature.default)
    return column.cast(feature.polars_dtype).alias(name)


def _aligned(frames: list[pl.DataFrame], typed: set[str]) -> pl.DataFrame:
    """Left-join frames keyed by distinct ``customer_id`` onto the first, keeping its row order.

    Each further frame's rows are matched to the first's on the key column alone (a narrow
    join), then each of its columns is gathered once in the first's order (null where a
    customer has no row) and the columns are put side by side. Chained wide joins that keep
    the left order copied the growing left frame at every join: a quarter of the build's time
    at 500k. The columns named in ``typed`` get their registered default and type as they are
    gathered (:func:`_typed`), and each frame is let go once gathered (``frames`` is emptied),
    so a typed copy of the whole result never sits beside an untyped one.
    """
    first = frames.pop(0)
    keys = first.select(ID).lazy()
    rows = pl.collect_all(
        [
            keys.join(
                other.lazy().select(ID).with_row_index("_row"),
                on=ID,
                how="left",
                maintain_order="left",
            ).select("_row")
            for other in frames
        ]
    )
    parts = [first.select(_typed(c, pl.col(c)) if c in typed else pl.col(c) for c in first.columns)]
    del first
    for row in rows:
        other = frames.pop(0)
        parts.append(
            other.select(
                _typed(c, pl.col(c).gather(row["_row"]))
                if c in typed
                else pl.col(c).gather(row["_row"])
                for c in other.columns
                if c != ID
            )
        )
        del other
    return pl.concat(parts, how="horizontal")


def build_snapshot_by_range(
    ranges: CustomerRanges,
    customers: pl.LazyFrame | pl.DataFrame | None,
    as_of: date,
    categories: Sequence[str] | None = None,
    on_bucket: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Build the feature snapshot from events split into ranges of ``customer_id``.

    The customers of each range are built apart (the range's events and customers rows), as
    :func:`build_snapshot` does with hash buckets, so the working memory is that of one range;
    the categories are those of all the ranges and the RFM scores rank every customer, so the
    result is :func:`build_snapshot`'s of the same events. One split
    (:func:`features.store.split_by_customer`) serves both this build and the history
    (:meth:`features.store.Store.write_history`), so the events are split once, not twice.

    Parameters
    ----------
    ranges : features.store.CustomerRanges
        The events up to ``as_of``, split by ranges of ``customer_id``.
    customers : polars.LazyFrame or polars.DataFrame, optional
        As for :func:`build_snapshot`.
    as_of : datetime.date
        The snapshot day: the day the events were split for.
    categories : sequence of str, optional
        As for :func:`build_snapshot`.
    on_bucket : callable, optional
        With more than one range, called after each range with the ranges built so far and
        their number (e.g. to advance a progress bar).

    Returns
    -------
    polars.DataFrame
        As :func:`build_snapshot`.

    Raises
    ------
    ValueError
        As :func:`build_snapshot`, or if the events were split for another day.
    """
    if ranges.as_of != as_of:
        raise ValueError(f"the events were split for {ranges.as_of}, not for {as_of}")
    if len(ranges) == 1:
        return build_snapshot(ranges.events(0), customers, as_of, categories)
    if categories is None:
        everything = pl.concat([ranges.events(r) for r in range(len(ranges))])
        categories = sorted(set(category_names(prepare_events(everything, as_of)).values()))
    cats = category_slugs(categories)
    people = (
        None if customers is None else customers.lazy().with_columns(ranges.key().alias(_BUCKET))
    )
    parts = []
    for r in range(len(ranges)):
        parts.append(
            build_snapshot(
                ranges.events(r),
                None if people is None else people.filter(pl.col(_BUCKET) == r).drop(_BUCKET),
                as_of,
                cats,
            )
        )
        if on_bucket is not None:
            on_bucket(r + 1, len(ranges))
    return _ranked(parts)


def _by_bucket(
    events: pl.LazyFrame | pl.DataFrame,
    customers: pl.LazyFrame | pl.DataFrame | None,
    as_of: date,
    categories: list[str],
    buckets: int,
    on_bucket: Callable[[int, int], None] | None,
) -> pl.DataFrame:
    """Build each bucket of ``customer_id`` apart, then rank every customer's RFM."""
    with tempfile.TemporaryDirectory(prefix="guanxi-buckets-") as spill:
        parts = []
        for b, (bucket_events, bucket_customers) in enumerate(
            _split(events, customers, buckets, Path(spill))
        ):
            parts.append(build_snapshot(bucket_events, bucket_customers, as_of, categories))
            if on_bucket is not None:
                on_bucket(b + 1, buckets)
    return _ranked(parts)


def _split(
    events: pl.LazyFrame | pl.DataFrame,
    customers: pl.LazyFrame | pl.DataFrame | None,
    buckets: int,
    spill: Path,
) -> list[tuple[pl.LazyFrame, pl.LazyFrame | None]]:
    """Return each bucket's events and customers rows (``None`` without a customers table).

    Events given lazily and in ``customer_id`` order (:func:`features.store.sorted_ranges`) are
    cut into ranges of ``customer_id``, each a filter of the scan itself: nothing is written.
    Other lazy events are split by a hash of ``customer_id`` in one streaming pass to files in
    ``spill`` (:func:`features.store.spill_partitions`); a ``DataFrame`` is split in memory.
    """
    if isinstance(events, pl.LazyFrame) and (ranges := sorted_ranges(events, buckets)) is not None:
        return [
            (events.filter(r), None if customers is None else customers.lazy().filter(r))
            for r in ranges
        ]
    bucket = (pl.col(ID).hash() % buckets).alias(_BUCKET)
    if isinstance(events, pl.LazyFrame):
        # one streaming pass; each bucket is then read from its own files
        split = spill_partitions(events, bucket, buckets, spill)
    else:
        tagged = events.with_columns(bucket).lazy()
        split = [tagged.filter(pl.col(_BUCKET) == b).drop(_BUCKET) for b in range(buckets)]
    people = None if customers is None else customers.lazy().with_columns(bucket)
    return [
        (
            split[b],
            None if people is None else people.filter(pl.col(_BUCKET) == b).drop(_BUCKET),
        )
        for b in range(buckets)
    ]


def _ranked(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Put the parts' customers together, sorted, and rank every customer's RFM scores."""
    snapshot = pl.concat(parts).sort(ID)
    del parts[:]
    has_orders = pl.col("orders_total") > 0  # the rows order_features scores
    return snapshot.with_columns(
        pl.when(has_orders)
        .then(score(measure, higher_is_better=higher).over(has_orders))
        .cast(snapshot.schema[name])
        .alias(name)
        for name, (measure, higher) in RFM_SCORES.items()
    ).with_columns(rfm_segment(pl.col("r_score"), pl.col("f_score")).alias("rfm_segment"))


def passthrough_columns(snapshot: pl.DataFrame) -> list[str]:
    """Return the customers-table columns that a snapshot passes through as model inputs.

    They are the numeric and boolean columns that are neither keys nor registered features;
    they are model inputs without a registry entry, so reasons show their bare names. String
    (and other) passed-through columns are for display only.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A frame from :func:`build_snapshot`.

    Returns
    -------
    list of str
        Column names in snapshot order.
    """
    return [
        name
        for name, dtype in snapshot.schema.items()
        if name not in KEYS and not is_feature(name) and (dtype.is_numeric() or dtype == pl.Boolean)
    ]


def model_input_columns(snapshot: pl.DataFrame) -> list[str]:
    """Return the columns models read: registered model inputs, then passed-through columns.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A frame from :func:`build_snapshot`.

    Returns
    -------
    list of str
        Column names in snapshot order.
    """
    registered = [c for c in snapshot.columns if is_feature(c) and feature_info(c).model_input]
    return registered + passthrough_columns(snapshot)
