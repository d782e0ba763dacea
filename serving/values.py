"""The customer value table served beside the scores: loading, lookups and equity by segment.

``guanxi value`` keeps a value table per day in the store
(:meth:`features.store.Store.write_values`, one row per customer with an order: P(alive),
expected purchases, CLV two ways, value tier, RFM segment, churn probability, equity at risk;
:mod:`models.clv.customers`). Each load of the state
reads the table of the served snapshot's day, or when there is none the newest table in the store
(its own ``as_of`` is in every answer), and computes customer equity overall, per RFM segment and
per value tier once (:func:`models.clv.equity_tables`); a store without a table, or a table that
cannot be read, leaves the scores serving without values (the value routes answer 404 and say
how to compute them); so does a table written without the server's ``GUANXI_STORE_KEY``
(unsigned: the log says so), or listing a customer on more than one row (whose row a lookup
would answer is not known: the log names the day and a customer).

Customer value needs no model: while no state is loaded (nothing promoted yet, or the first load
still running) the value routes and pages serve the store's newest table (:class:`NewestValues`),
and while a state that loaded without a table is served, the table a load would pick, once one
is written (no reload needed).
Equity at risk needs churn probabilities: a table without any (``guanxi value`` before a churn
model is promoted) says so and what to run (:attr:`LoadedValues.churn_missing`) instead of an
equity at risk of 0.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import pandas as pd
import polars as pl

from features.store import Store, UnsignedTableError, ValueTableInfo, manifest_path
from models.clv import EQUITY_GROUPS, VALUE_TIERS, equity_tables, top_equity_at_risk
from models.clv.customers import VALUE_COLUMNS
from models.customer_rows import RepeatedCustomersError, repeated_customers

__all__ = [
    "CHURN_HORIZON_DAYS",
    "CHURN_MODEL_VERSION",
    "EXPORT_COLUMNS",
    "NOT_SERVING",
    "NO_CHURN_MODEL",
    "NO_SEGMENT",
    "NO_VALUES",
    "SERVED_DETAILS",
    "LoadedValues",
    "NewestValues",
    "load_values",
    "segment_rows",
]

logger = logging.getLogger(__name__)

NOT_SERVING: Final = "not serving values"
"""How the server's log line of a value table it refuses starts (:func:`load_values`):
:data:`NO_VALUES` tells a client to look for it."""

NO_SEGMENT: Final = "none"
"""How a group without a key (no RFM segment; no CLV, so no tier) is named."""

NO_VALUES: Final = (
    "no customer value table is served: the store has none, or its table was refused (not "
    "signed with this server's GUANXI_STORE_KEY, listing a customer on more than one row, or "
    f"unreadable: a '{NOT_SERVING}' line of the server's log says which table and why; without "
    "one the store has none); run `guanxi value --events PATH --as-of DATE --out PATH` (or "
    "`guanxi demo`, on sample data) with the server's GUANXI_HOME and GUANXI_STORE_KEY: it is "
    "served from the next request on, without a reload"
)
"""What the value routes and pages say when no value table is served.

It said "(the server's log says which)", but of an empty store the log says nothing: only a
table refused (:func:`load_values`) is logged, with :data:`NOT_SERVING`.

Either command keeps its table in the store of its own ``GUANXI_HOME``, signed with its own
``GUANXI_STORE_KEY``: a server with a key serves only a table signed with that key, so
``guanxi demo`` run without it helps no more than ``guanxi value`` does. A loaded state reads its
table when it loads; while it serves none (and while no state is loaded) a table is served once
written (:func:`serving.deps.served_values`): before, a state loaded without one answered this
404 until a reload, and the sentence said to reload."""

SERVED_DETAILS: Final = ("churn_status", "expected_margin_per_order")
"""The :data:`models.clv.customers.DETAIL_COLUMNS` a customer's value answer carries beside
:data:`~models.clv.customers.VALUE_COLUMNS` (why there is no churn probability, and what each
order earns in the CLV); null when a table lacks them."""

CHURN_MODEL_VERSION: Final = "churn_model_version"
"""The column (and field) naming the version of the churn model a value table read."""

CHURN_HORIZON_DAYS: Final = "churn_horizon_days"
"""The column of the churn model's horizon, beside :data:`CHURN_MODEL_VERSION`, as
``GET /v1/customers/{id}/value`` names both."""

EXPORT_COLUMNS: Final = (
    *VALUE_COLUMNS,
    "as_of",
    *SERVED_DETAILS,
    CHURN_MODEL_VERSION,
    CHURN_HORIZON_DAYS,
)
"""The columns of a segment's CSV export: those of its first version, then the details its JSON
answer carries (added at the end: scripts read the columns by position too; empty when a table
lacks one), then the version and the horizon of the churn model whose probabilities the rows hold
(empty without one): a file kept after a churn promotion says which model its equity at risk is
of, as the value API does (``churn_model_version``, ``churn_horizon_days``)."""

NO_CHURN_MODEL: Final = "no_churn_model"
"""The ``churn_status`` served for a customer of a table computed without a churn model."""


@dataclass(frozen=True, eq=False)
class LoadedValues:
    """A value table with its metadata and its equity breakdowns.

    Attributes
    ----------
    info : features.store.ValueTableInfo
        What the store recorded with the table (day, horizon, discount rate, fit, validation).
    frame : polars.DataFrame
        One row per customer (:data:`models.clv.customers.VALUE_COLUMNS` and the details).
    index : pandas.Index
        ``customer_id`` to row position.
    equity : dict of str to polars.DataFrame
        ``overall`` and one table per column of :data:`models.clv.EQUITY_GROUPS` (null keys
        named :data:`NO_SEGMENT`).
    """

    info: ValueTableInfo
    frame: pl.DataFrame
    index: pd.Index
    equity: dict[str, pl.DataFrame]

    @classmethod
    def of(cls, frame: pl.DataFrame, info: ValueTableInfo) -> LoadedValues:
        """Index a value table and compute its equity breakdowns.

        Parameters
        ----------
        frame : polars.DataFrame
            The table as stored.
        info : features.store.ValueTableInfo
            Its metadata.

        Returns
        -------
        LoadedValues
            Ready to serve.

        Raises
        ------
        models.customer_rows.RepeatedCustomersError
            If the table lists a customer on more than one row: a lookup of them found several
            rows (a 500), and the equity counted them once a row. The index's uniqueness is the
            hash table its lookups use, built here once rather than at the first lookup.
        """
        index = pd.Index(frame["customer_id"].to_list())
        if not index.is_unique:
            raise repeated_customers(
                pl.Series(index[index.duplicated()].unique()),
                info.as_of,
                what="values",
                consequence="the equity by segment and tier would count them once a row",
            )
        equity = {
            name: table.with_columns(pl.col(name).fill_null(NO_SEGMENT))
            if name != "overall"
            else table
            for name, table in equity_tables(frame).items()
        }
        return cls(info, frame, index, equity)

    @property
    def as_of(self) -> date:
        """The day the values were computed as of."""
        return self.info.as_of

    @property
    def churn_model_version(self) -> str | None:
        """The version of the churn model whose probabilities the table holds; None without one.

        Registry versions are strings (``"3"``); a number recorded by hand is read as one.
        """
        model = self.info.churn_model
        return None if model is None else str(model["version"])

    @property
    def churn_horizon_days(self) -> int | None:
        """The horizon of the churn model whose probabilities the table holds; None without one."""
        model = self.info.churn_model
        return None if model is None else int(model["horizon_days"])

    @property
    def churn_status_default(self) -> str | None:
        """The ``churn_status`` served for a customer whose row has none; None leaves it null.

        :data:`NO_CHURN_MODEL` when the table was computed without a churn model, else None (a
        table read with one says each customer's status itself). The one rule of the JSON
        answers (:func:`serving.value_routes.customer_value`) and the segment CSV exports
        (:func:`segment_rows`), which each wrote it.
        """
        return NO_CHURN_MODEL if self.info.churn_model is None else None

    @property
    def churn_missing(self) -> str | None:
        """Say why the table holds no churn probability and what to run; None when it holds some.

        Equity at risk is churn probability x CLV: without any probability it is not 0 but
        unknown.
        """
        if self.equity["overall"]["scored"][0]:
            return None
        if self.info.churn_model is None:
            return (
                "this value table was computed without a churn model, so it holds no churn "
                "probability and equity at risk is unknown: train one with `guanxi train`, "
                "promote it with `guanxi promote`, then run `guanxi value` again"
            )
        return (
            "no customer of this value table is in the churn model's population (churn_status "
            "says why for each), so it holds no churn probability and equity at risk is unknown"
        )

    def row(self, customer_id: str) -> dict[str, Any] | None:
        """Return one customer's row, or None when the table has no such customer.

        Parameters
        ----------
        customer_id : str
            The customer.

        Returns
        -------
        dict or None
            Column name to value.
        """
        try:
            position = int(self.index.get_loc(customer_id))  # type: ignore[arg-type]
        except KeyError:
            return None
        return self.frame.row(position, named=True)

    def holds(self, customer_id: str) -> bool:
        """Say whether the table has a customer, without reading out the row (:meth:`row`'s).

        Parameters
        ----------
        customer_id : str
            The customer.

        Returns
        -------
        bool
            True when the table has a row of that id.
        """
        return customer_id in self.index

    def segment_kind(self, name: str) -> str | None:
        """Say which grouping a segment name belongs to.

        Parameters
        ----------
        name : str
            An RFM segment (``champions``, ...), a value tier (``top_1pct``, ...) or
            :data:`NO_SEGMENT`.

        Returns
        -------
        str or None
            ``"value_tier"`` for a tier name, ``"rfm_segment"`` for a segment present in the
            table (or :data:`NO_SEGMENT`), None otherwise.
        """
        if name in {tier for tier, _ in VALUE_TIERS}:
            return "value_tier"
        known = set(self.equity["rfm_segment"]["rfm_segment"].to_list())
        return "rfm_segment" if name in known else None

    def segments(self) -> list[str]:
        """Return every name :meth:`segment_kind` knows: RFM segments, then value tiers."""
        return [
            *self.equity["rfm_segment"]["rfm_segment"].to_list(),
            *(tier for tier, _ in VALUE_TIERS),
        ]

    def top_at_risk(self, share: float = 0.5, limit: int = 100) -> pl.DataFrame:
        """Return the customers carrying ``share`` of the equity at risk, largest first.

        Parameters
        ----------
        share : float, default 0.5
            Share of the total equity at risk to cover.
        limit : int, default 100
            Most rows returned.

        Returns
        -------
        polars.DataFrame
            :func:`models.clv.top_equity_at_risk` rows, at most ``limit``.
        """
        return top_equity_at_risk(self.frame, share).head(limit)


def segment_rows(values: LoadedValues, kind: str, name: str) -> pl.DataFrame:
    """Return the customers of one segment or tier, highest CLV first.

    Parameters
    ----------
    values : LoadedValues
        The loaded table.
    kind : {"rfm_segment", "value_tier"}
        The grouping (:meth:`LoadedValues.segment_kind`).
    name : str
        The segment or tier (:data:`NO_SEGMENT` for the customers without one).

    Returns
    -------
    polars.DataFrame
        :data:`models.clv.customers.VALUE_COLUMNS`, ``as_of``, :data:`SERVED_DETAILS` (null
        when the table lacks one; ``churn_status`` :attr:`LoadedValues.churn_status_default` where
        a row has none, as the JSON answers say it), :data:`CHURN_MODEL_VERSION` and
        :data:`CHURN_HORIZON_DAYS` (the table's churn model, null without one), sorted by CLV
        (nulls last) then ``customer_id``.
    """
    if kind not in EQUITY_GROUPS:
        raise ValueError(f"kind must be one of {EQUITY_GROUPS}, got {kind!r}")
    key = pl.col(kind)
    chosen = key.is_null() if name == NO_SEGMENT else key == name
    columns = values.frame.columns
    details = [pl.col(c) if c in columns else pl.lit(None).alias(c) for c in SERVED_DETAILS]
    default = values.churn_status_default  # as the JSON answers say it (qa44 L3)
    if default is not None:
        status = SERVED_DETAILS.index("churn_status")
        details[status] = details[status].cast(pl.String).fill_null(default).alias("churn_status")
    return (
        values.frame.filter(chosen)
        .select(
            *VALUE_COLUMNS,
            pl.lit(values.as_of, pl.Date).alias("as_of"),
            *details,
            pl.lit(values.churn_model_version, pl.String).alias(CHURN_MODEL_VERSION),
            pl.lit(values.churn_horizon_days, pl.Int64).alias(CHURN_HORIZON_DAYS),
        )
        .sort(["clv", "customer_id"], descending=[True, False], nulls_last=True)
    )


def _written(store: Store, day: date) -> tuple[object, ...]:
    """Identify one write of a day's value table: its file's inode, time and size, its manifest.

    The manifest (a small file, with a key) holds the table's SHA-256 and creation time, so a
    table written again is told apart even when its file's inode, time and size recur; without a
    key there is none and the file's identity alone tells it.
    """
    path = store.value_path(day)
    try:
        stat = path.stat()
        file: tuple[object, ...] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        file = ()
    try:
        manifest: bytes | None = manifest_path(path).read_bytes()
    except FileNotFoundError:
        manifest = None
    return (str(path), file, manifest)


class NewestValues:
    """The store's newest value table, read once per write of it (served while no state's is).

    Each call lists the store's value tables and identifies the write of the one to serve (the
    newest, or the given day's when there is one; its file and its signed manifest,
    :func:`_written`): the table is read and indexed again only when that changed (a newer day,
    the same day written again, or signed since), so a reviewer's clicks and an integrator's
    calls do not each read a table of a million rows, and a table written later is served at its
    first request. One read at a time: concurrent requests wait for it rather than each reading
    the table.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: tuple[object, ...] | None = None
        self._values: LoadedValues | None = None

    def get(self, store: Store, as_of: date | None = None) -> LoadedValues | None:
        """Return the store's value table to serve, read again only when it was written since.

        Parameters
        ----------
        store : features.store.Store
            The store under ``GUANXI_HOME`` (always the same one for an instance).
        as_of : datetime.date, optional
            The served snapshot's day: its table is preferred, else the newest is served, as
            :func:`load_values` picks it; default the newest.

        Returns
        -------
        LoadedValues or None
            As :func:`load_values`; None when the store holds no value table.
        """
        days = store.list_values()
        if not days:
            self.clear()
            return None
        day = as_of if as_of in days else days[-1]
        written = _written(store, day)
        with self._lock:
            if written != self._written:
                self._values = load_values(store, day)
                self._written = written
            return self._values

    def clear(self) -> None:
        """Forget the table read (a loaded state serves its own: the memory is freed).

        Every value request served from a loaded state's table calls it: the lock is taken only
        while a read is held. A read finishing after the check is forgotten by the request that
        made it (:func:`serving.deps.served_values` looks at the state again once it has it).
        """
        if self._written is None:
            return
        with self._lock:
            self._written = self._values = None


def load_values(store: Store, as_of: date) -> LoadedValues | None:
    """Load the value table to serve beside a snapshot.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    as_of : datetime.date
        The served snapshot's day: its table is preferred, else the newest table is served.

    Returns
    -------
    LoadedValues or None
        None when the store holds no value table, or the table cannot be read, is not signed
        with the store's key or lists a customer on more than one row (logged: the scores serve
        without values rather than not at all).
    """
    days = store.list_values()
    if not days:
        return None
    day = as_of if as_of in days else days[-1]
    if day != as_of:
        logger.warning(
            "no value table as of the snapshot's day %s: serving the newest, as of %s", as_of, day
        )
    try:
        info = store.value_info(day)
        frame = store.read_values(day)
        if info is None or frame is None:
            raise FileNotFoundError(f"the value table as of {day} disappeared while being read")
        missing = [c for c in VALUE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"the value table as of {day} lacks {', '.join(missing)}")
        return LoadedValues.of(frame, info)
    except UnsignedTableError as exc:  # written by `guanxi value` without the server's key
        logger.warning(
            "%s: the value table as of %s is not signed with this server's GUANXI_STORE_KEY "
            "(%s); write it again with `guanxi value` under that key (served from the next "
            "request on)",
            NOT_SERVING,
            day,
            exc,
        )
        return None
    except RepeatedCustomersError as exc:  # names the day, a customer and the command
        logger.warning(
            "%s: %s; written again, it is served from the next request on", NOT_SERVING, exc
        )
        return None
    except Exception as exc:  # a damaged table must not stop the scores from serving
        logger.warning(
            "%s: the value table as of %s cannot be read: %s: %s",
            NOT_SERVING,
            day,
            type(exc).__name__,
            exc,
        )
        return None
