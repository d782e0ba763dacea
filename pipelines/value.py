"""``guanxi value``: every customer's value as of a day, in a file or table and in the store.

Reads the events (``--events``, same source options as ``guanxi score``) as ``guanxi features
build`` does: more than ``GUANXI_FEATURES_IN_MEMORY_EVENTS`` (a file's or a database's, or events
that cannot be counted: :meth:`pipelines.connectors.Inputs.few_events`) are validated into staged
Parquet files (:func:`pipelines.snapshot.validated_events`), never held whole: the holdout check's
window reads a scan of them, and the summaries and the holdout check below read their ``order``
events, collected from one more scan (:func:`features.value.order_events`, about a tenth of the
events); fewer, and ``--engine spark``'s, are validated in memory. The snapshot of the day
comes from the store, or is built from the same validated events
(:func:`pipelines.score.snapshot_for`: the stored one only when built from these inputs, as
they are now; other files replace it). When the store holds it, nothing else of the events is
read but their orders and the last event's time, so many events are validated with only their
orders staged (:func:`pipelines.snapshot.validated_orders`: every event checked, the same
problems). It summarises each customer's purchases up to
``--as-of`` (:func:`features.value.repeat_purchase_summary`), fits BG/NBD and Gamma-Gamma
(:func:`models.clv.customers.fit_value_models`), reads the churn probabilities of the retention
task's model (``churn@champion`` by default; customers outside its population have none) and
computes the value table (:func:`models.clv.customers.value_table`):
P(alive), expected purchases and order value, CLV two ways, the days to the next order, the value
tier, the RFM segment of the day's snapshot, and equity at risk.

When the events reach past ``--as-of`` the forecast is checked against the purchases that
followed (up to ``--horizon-days`` after it); otherwise the same check runs one horizon earlier
(a backtest: the models fitted on the events up to ``as_of - horizon`` against the purchases up
to ``as_of``), when there is at least one horizon of history before that cutoff. The check compares
BG/NBD with the naive "same as last period" forecast (:func:`models.clv.holdout_check`).

Events that end more than :data:`features.freshness.STALE_EVENTS_DAYS` days before ``--as-of``
are refused once validated, nothing written, whether the snapshot is read or built (the models
are fitted on the events); 2 days short or more, a warning says so, and the MLflow run keeps it
(tag ``events_warning``, as a training run does): :func:`pipelines.snapshot.refuse_stale_events`.

The table goes to ``--out`` (a file, or a database table with ``--out-table``, replaced
atomically), into the store for serving (``--no-store`` skips it), and the fit, the check and the
equity totals are logged to MLflow (:func:`models.registry.log_value_fit`). With ``--engine
spark`` the summaries and the per-customer values are computed on Spark
(:func:`pipelines.spark.value_steps`) and the fit on the driver, with the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import mlflow
import polars as pl
import typer
from rich.console import Console
from rich.markup import escape

from features.contracts import FEATURE_SET_VERSION, MISSING, counted
from features.database import DatabaseError
from features.events import EventsValidationError, Loaded, Staged, StagedOrders
from features.formatting import format_percent
from features.freshness import StaleEventsError
from features.store import Store, ValueTableInfo
from features.value import order_events, repeat_purchase_summary
from models import registry
from models.clv import ModelIdentificationError, equity_tables
from models.clv.customers import (
    BASES,
    Basis,
    ValueFit,
    churn_probabilities,
    fit_value_models,
    value_table,
)
from models.clv.validation import HoldoutCheck, holdout_check
from models.targeting import GROUP_NAMES, NO_GROUP_NAMES
from models.tasks import retention_task
from pipelines import connectors
from pipelines.console import fitted_table, warn_unsigned
from pipelines.days import after_today, no_event_by
from pipelines.engine import DEFAULT_MASTER, Engine, EngineOption, SparkMasterOption
from pipelines.margins import check_margin_rate
from pipelines.score import (
    EventsCheck,
    NoCustomerError,
    model_categories,
    require_tracking,
    same_inputs,
    snapshot_for,
    stored_snapshot,
)
from pipelines.snapshot import (
    describe_sources,
    refuse_stale_events,
    validated_events,
    validated_orders,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

__all__ = [
    "ChurnModel",
    "ValueRun",
    "check_window",
    "compute_values",
    "keep_values",
    "load_churn",
    "print_values",
    "value_command",
]


@dataclass(frozen=True)
class ValueRun:
    """Everything one value computation produced.

    Attributes
    ----------
    as_of : datetime.date
        The day of the values.
    horizon_days : int
        Days the expected purchases and CLV cover.
    discount_rate : float
        Annual discount rate.
    table : polars.DataFrame
        The value table (with an ``as_of`` column last).
    fit : ValueFit
        The fitted models.
    churn_model : dict or None
        ``name``, ``version`` and ``horizon_days`` of the churn model read.
    notes : tuple of str
        What a reader should know (no churn model, no holdout check, customers left out).
    check : HoldoutCheck or None
        The forecast against the purchases after a cutoff.
    """

    as_of: date
    horizon_days: int
    discount_rate: float
    table: pl.DataFrame
    fit: ValueFit
    churn_model: dict[str, Any] | None
    notes: tuple[str, ...]
    check: HoldoutCheck | None


def check_window(
    events: pl.DataFrame | pl.LazyFrame,
    as_of: date,
    horizon_days: int,
    *,
    last: datetime | None = None,
) -> tuple[date, date] | None:
    """Return the holdout ``(cutoff, through)`` of the forecast check, or None without room.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        Validated events (a scan of staged events is read once, for two of its columns), or
        only their ``order`` events with ``last``.
    as_of : datetime.date
        The day of the values.
    horizon_days : int
        The horizon.
    last : datetime.datetime, optional
        The time of the last event of any type, when ``events`` holds only the orders
        (:class:`features.events.StagedOrders`); by default the last of ``events``.

    Returns
    -------
    tuple of (datetime.date, datetime.date) or None
        ``(as_of, min(as_of + horizon, last event day))`` when the events reach past ``as_of``;
        else ``(as_of - horizon, as_of)`` when the first order is at least one horizon before
        that cutoff; else None (no order at all included).
    """
    order = pl.col("event_type") == "order"
    bounds = (
        events.lazy()
        .select(
            pl.col("ts").max().alias("last"),
            pl.col("ts").filter(order).min().alias("first"),
        )
        .collect()
        .row(0, named=True)
    )
    if bounds["first"] is None:
        return None
    end = (last or bounds["last"]).date()
    if end > as_of:
        return as_of, min(as_of + timedelta(days=horizon_days), end)
    cutoff = as_of - timedelta(days=horizon_days)
    first = bounds["first"].date()
    return (cutoff, as_of) if (cutoff - first).days >= horizon_days else None


def compute_values(
    events: pl.DataFrame | pl.LazyFrame | SparkDataFrame,
    snapshot: pl.DataFrame,
    as_of: date,
    *,
    horizon_days: int = 365,
    discount_rate: float = 0.10,
    basis: str = "auto",
    margin_rate: float = 1.0,
    alias: str = registry.CHAMPION,
    engine: Engine = "polars",
    spark_master: str = DEFAULT_MASTER,
    last_event: datetime | None = None,
    no_model: str | None = None,
    other_features: str | None = None,
    loaded_churn: ChurnModel | None = None,
) -> ValueRun:
    """Fit the value models and compute every customer's value as of a day.

    Parameters
    ----------
    events : polars.DataFrame, polars.LazyFrame or pyspark.sql.DataFrame
        Validated events (those after ``as_of`` are used only by the holdout check): in memory,
        or a scan of staged events (:class:`features.events.Staged`, or only their ``order``
        events with ``last_event``: :class:`features.events.StagedOrders`), never collected
        whole (with ``engine="polars"`` the summaries and the check read its ``order`` events,
        collected once: :func:`features.value.order_events`); rows on Spark with
        ``engine="spark"`` (a Spark table's, which stay there: no holdout check).
    snapshot : polars.DataFrame
        The feature snapshot of ``as_of`` (RFM segment, trailing revenue and margin, the churn
        model's inputs).
    as_of : datetime.date
        The day of the values.
    horizon_days : int, default 365
        Days the expected purchases and both CLVs cover.
    discount_rate : float, default 0.10
        Annual discount rate.
    basis : {"auto", "margin", "revenue"}, default "auto"
        What a purchase earns (:func:`models.clv.customers.choose_basis` for ``auto``).
    margin_rate : float, default 1.0
        Margin per unit of revenue on the revenue basis.
    alias : str, default "champion"
        Registry alias of the churn model to read.
    engine : {"polars", "spark"}, default "polars"
        Where the summaries and the value table are computed (the fit is in this process
        either way; :func:`pipelines.spark.value_steps`).
    spark_master : str
        Spark master URL with ``engine="spark"``.
    last_event : datetime.datetime, optional
        The time of the last event of any type when ``events`` holds only the orders: the
        holdout check's window reads it (:func:`check_window`).
    no_model : str, optional
        Why there is no churn model, in the note of a run without one (after "no churn
        probabilities, so clv_textbook and equity_at_risk are empty: "); by default the
        registry's message, which says to train and promote one. ``guanxi cycle``, whose retrain
        step trains churn later in the same cycle, says that instead.
    other_features : str, optional
        The note of a churn model trained on another feature set than this guanxi builds (after
        "no churn probabilities, so clv_textbook and equity_at_risk are empty: "): its
        probabilities are left out, said so, rather than the model refused
        (:class:`models.scoring.FeatureSetMismatchError`, the default). ``guanxi cycle``, whose
        retrain step retrains it, says that.
    loaded_churn : ChurnModel, optional
        The churn model :func:`load_churn` loaded (``guanxi value`` builds the snapshot with its
        categories first); by default it is loaded here.

    Returns
    -------
    ValueRun
        The table, the fit, the churn model read, the holdout check and notes.

    Raises
    ------
    models.clv.ModelIdentificationError
        If the value models cannot be fitted on these events.
    ValueError
        If an argument is out of range or the margin basis lacks margins, or (without
        ``other_features``) the churn model was trained on another feature set.
    """
    notes: list[str] = []
    summarize: Callable[..., pl.DataFrame] = repeat_purchase_summary
    tabulate: Callable[..., pl.DataFrame] = value_table
    if engine == "spark":
        from pipelines.spark import value_steps

        summarize, tabulate = value_steps(spark_master)
    window = None
    if isinstance(events, pl.DataFrame | pl.LazyFrame):
        window = check_window(events, as_of, horizon_days, last=last_event)
        if engine == "polars" and isinstance(events, pl.LazyFrame):
            # the orders the summaries and the holdout check read, collected in one read of the
            # staged events instead of four scans; events in memory are read as they are (a copy
            # of their orders would only add memory)
            events = order_events(events, max(as_of, window[1]) if window else as_of)
    summary = summarize(events, as_of)
    chosen = None if basis == "auto" else cast(Basis, basis)
    fit = fit_value_models(summary, basis=chosen, margin_rate=margin_rate)
    if fit.basis == "margin" and margin_rate != 1.0:  # 1.0, the default, is nobody's choice
        # a --margin-rate 0.3 beside orders with margins (auto chose them) was dropped unsaid
        notes.append(
            f"the margin rate {margin_rate:g} (--margin-rate) is not used: the CLV earns on the "
            "orders' own margins; --value-basis revenue values revenue times the rate instead"
        )
    if fit.excluded:
        notes.append(
            f"{counted(fit.excluded, 'repeat buyers')} with a mean margin <= 0 "
            f"{'was' if fit.excluded == 1 else 'were'} left out of the "
            "Gamma-Gamma fit and valued by its shrinkage towards the population mean (their CLV "
            "can be negative)"
        )
    loaded = loaded_churn or load_churn(alias, no_model, other_features)
    churn, churn_model, note = _churn(snapshot, loaded)
    if note:
        notes.append(note)
    table = tabulate(
        summary,
        snapshot,
        fit,
        horizon_days=horizon_days,
        discount_rate=discount_rate,
        churn=churn,
        churn_horizon_days=churn_model["horizon_days"] if churn_model else None,
    ).with_columns(as_of=pl.lit(as_of, pl.Date))
    check = None
    if not isinstance(events, pl.DataFrame | pl.LazyFrame):
        notes.append("no holdout check: the events are a Spark table (the check reads them here)")
    elif window is None:
        notes.append(
            "no holdout check: the events neither reach past --as-of nor hold one horizon of "
            "history before as_of - horizon"
        )
    else:
        try:
            check = holdout_check(events, *window)
        except ModelIdentificationError as error:
            notes.append(f"no holdout check: {error}")
    return ValueRun(
        as_of, horizon_days, discount_rate, table, fit, churn_model, tuple(notes), check
    )


@dataclass(frozen=True)
class ChurnModel:
    """The retention task's aliased model :func:`compute_values` reads, or why there is none.

    Parameters
    ----------
    loaded : models.registry.LoadedModel or None
        The model, None when there is none to read.
    note : str or None
        Why there is none (the run's note), or None.
    """

    loaded: registry.LoadedModel | None
    note: str | None = None

    @property
    def categories(self) -> list[str] | None:
        """The product categories the model reads (:func:`models.scoring.model_categories`)."""
        return model_categories([self.loaded.bundle]) if self.loaded is not None else None


def load_churn(
    alias: str, no_model: str | None = None, other_features: str | None = None
) -> ChurnModel:
    """Load the retention task's aliased model once, before the snapshot is built with it.

    Parameters
    ----------
    alias : str
        Registry alias.
    no_model, other_features : str, optional
        As :func:`compute_values`'s.

    Returns
    -------
    ChurnModel
        The model, or the note of a run without one (no retention task, no such version, a
        model of another feature set with ``other_features``).

    Raises
    ------
    models.scoring.FeatureSetMismatchError
        Without ``other_features``, if the model was trained on another feature set.
    """
    spec = retention_task()
    if spec is None:
        return ChurnModel(
            None, "no task declares retention risk: no churn probability, no textbook CLV"
        )
    empty = "no churn probabilities, so clv_textbook and equity_at_risk are empty"
    try:  # a model of another feature set is refused, unless the caller says what becomes of it
        loaded = registry.load_model(spec.name, alias=alias, check=other_features is None)
    except registry.ModelNotFoundError as error:
        return ChurnModel(None, f"{empty}: {no_model or error}")
    if loaded.bundle.feature_set_version != FEATURE_SET_VERSION:  # only with other_features
        return ChurnModel(None, f"{empty}: {other_features}")
    return ChurnModel(loaded)


def _churn(
    snapshot: pl.DataFrame, churn: ChurnModel
) -> tuple[pl.DataFrame | None, dict[str, Any] | None, str | None]:
    """Churn probabilities of the retention task's aliased model, or why there are none."""
    loaded = churn.loaded
    if loaded is None:
        return None, None, churn.note
    recorded = (loaded.bundle.metadata.get("params") or {}).get("horizon") or loaded.tags.get(
        "horizon"
    )
    horizon = int(float(recorded)) if recorded else None
    if horizon is None:
        return None, None, f"{loaded.name} version {loaded.version} records no horizon"
    model = {"name": loaded.name, "version": loaded.version, "horizon_days": horizon}
    return churn_probabilities(loaded.bundle, snapshot), model, None


def keep_values(
    run: ValueRun,
    home: Path,
    *,
    store: bool = True,
    sources: dict[str, str] | None = None,
    events_warning: str | None = None,
) -> tuple[str, ValueTableInfo | None]:
    """Log a value run to MLflow and keep its table in the store.

    Parameters
    ----------
    run : ValueRun
        The computation.
    home : pathlib.Path
        ``GUANXI_HOME`` (tracking must be configured).
    store : bool, default True
        Whether to write the table into the store.
    sources : dict of str to str, optional
        Where the events came from, logged as params.
    events_warning : str, optional
        The warning of events a few days short of the day
        (:func:`pipelines.snapshot.refuse_stale_events`), the run's tag ``events_warning`` as a
        training run's (:attr:`training.train.TrainResult.events_warning`).

    Returns
    -------
    tuple of (str, features.store.ValueTableInfo or None)
        The MLflow run id, and what the store holds (None with ``store=False``).
    """
    tables = equity_tables(run.table)
    fit = run.fit.summary()
    settings = {
        "as_of": run.as_of.isoformat(),
        "horizon_days": run.horizon_days,
        "discount_rate": run.discount_rate,
        "basis": run.fit.basis,
        "margin_rate": fit["margin_rate"],
        "customers": run.table.height,
        **({f"churn_model.{k}": v for k, v in (run.churn_model or {}).items()}),
        **(sources or {}),
    }
    validation = run.check.as_dict() if run.check is not None else None
    results = {
        **{k: v for k, v in fit.items() if isinstance(v, dict)},
        "excluded": run.fit.excluded,
        "holdout": validation["forecasts"] if validation else {},
        "equity": tables["overall"].row(0, named=True),
    }
    run_id = registry.log_value_fit(
        home, run.as_of, settings, results, {k: v.to_pandas() for k, v in tables.items()}
    )
    if events_warning is not None:  # as guanxi train tags its run (qa43 H1)
        mlflow.MlflowClient().set_tag(run_id, "events_warning", events_warning)
    info = None
    if store:
        from serving.settings import get_settings

        # signed with GUANXI_STORE_KEY when it is set: the service serves signed tables only
        info = (
            get_settings()
            .store(home)
            .write_values(
                run.table,
                run.as_of,
                horizon_days=run.horizon_days,
                discount_rate=run.discount_rate,
                basis=run.fit.basis,
                fit=fit,
                churn_model=run.churn_model,
                validation=validation,
                run_id=run_id,
            )
        )
    return run_id, info


def _number(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}"


def print_values(console: Console, run: ValueRun) -> None:
    """Print the fit, the holdout check and the equity summary of a value run.

    Parameters
    ----------
    console : rich.console.Console
        Where to print.
    run : ValueRun
        The computation.
    """
    fit = run.fit.summary()
    bg = fit["bgnbd"]
    console.print(
        f"BG/NBD on {bg['customers']:,.0f} customers ({bg['repeat_buyers']:,.0f} repeat buyers): "
        f"r={bg['r']:.4g} alpha={bg['alpha']:.4g} a={bg['a']:.4g} b={bg['b']:.4g}, "
        f"log-likelihood {bg['log_likelihood']:,.1f}"
    )
    for key, label in (("gamma_gamma_revenue", "order values"), ("gamma_gamma_margin", "margins")):
        gg = fit.get(key)
        if gg is not None:
            console.print(
                f"Gamma-Gamma on {label} of {gg['customers']:,.0f} repeat buyers: p={gg['p']:.4g} "
                f"q={gg['q']:.4g} gamma={gg['gamma']:.4g}, population mean "
                f"{gg['population_mean']:,.2f}, spend-frequency correlation "
                f"{gg['spend_frequency_correlation']:+.3f}"
            )
    basis = "margins" if run.fit.basis == "margin" else f"revenue x {run.fit.margin_rate:g}"
    console.print(
        f"CLV earns on {basis}, {run.horizon_days} days at {run.discount_rate:.1%} a year"
    )
    if run.churn_model:
        model = run.churn_model
        console.print(
            f"churn probabilities: {model['name']} version {model['version']} "
            f"({model['horizon_days']}-day horizon)"
        )
    if run.check is not None:
        check = run.check
        # a title within 80 columns (it wrapped), and the table compact rather than wrapped
        title = f"Holdout: fitted to {check.cutoff}, purchases in ({check.cutoff}, {check.through}]"
        headers = ("forecast", "customers", "MAE", "correlation", "predicted", "actual", "error")
        rows = [
            (
                "BG/NBD" if name == "bgnbd" else "same as last period",
                f"{a.customers:,}",
                f"{a.mae:.3f}",
                f"{a.correlation:.3f}",
                f"{a.forecast_total:,.0f}",
                f"{a.actual_total:,.0f}",
                f"{a.aggregate_error:+.1%}",
            )
            for name, a in check.accuracy.items()
        ]
        console.print(fitted_table(console, title, headers, rows, {"forecast"}))
    tables = equity_tables(run.table)
    overall = tables["overall"].row(0, named=True)
    at_risk = (
        f"equity at risk {_number(overall['equity_at_risk'])} "
        f"({format_percent(overall['risk_share'])}, {overall['scored']:,} customers "
        "with a churn probability)"
        if overall["scored"]
        else "no churn probabilities, so no equity at risk"
    )
    console.print(
        f"customer equity {_number(overall['equity'])} over {overall['customers']:,} customers; "
        f"{at_risk}"
    )
    for by in ("value_tier", "rfm_segment"):
        # a group nobody in which has a churn probability (only lapsed customers, or no churn
        # model) has an equity at risk of 0 that reads as "no risk": not measured, as the value
        # page shows it since f358624
        cells = [
            (
                NO_GROUP_NAMES[by] if row[by] is None else str(row[by]),
                f"{row['customers']:,}",
                _number(row["equity"]),
                format_percent(row["equity_share"]),
                *(
                    (
                        _number(row["equity_at_risk"]),
                        format_percent(row["risk_share"]),
                    )
                    if row["scored"]
                    else (MISSING, MISSING)
                ),
            )
            for row in tables[by].iter_rows(named=True)
        ]
        columns = (by, "customers", "equity", "share", "at risk", "risk share")
        # boxed, or compact when that cuts a segment's name (potential_loyalist at 80 columns)
        console.print(fitted_table(console, f"Equity by {GROUP_NAMES[by]}", columns, cells, {by}))
    for note in run.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def value_command(
    as_of: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Day of the values (UTC).")],
    out: connectors.Out,
    events: connectors.SparkOrEvents = None,
    customers: connectors.Customers = None,
    horizon_days: Annotated[
        int, typer.Option(min=1, help="Days the expected purchases and CLV cover.")
    ] = 365,
    discount_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Annual discount rate (0.10 for 10%).")
    ] = 0.10,
    value_basis: Annotated[
        str,
        typer.Option(
            help="What a purchase earns: margin (Gamma-Gamma on margins), revenue (on order "
            "values times --margin-rate) or auto (margin when every repeat buyer has margins)."
        ),
    ] = "auto",
    margin_rate: Annotated[
        float,
        typer.Option(  # no min=: nan got its generic message; the check below names all
            help="Margin per unit of revenue on the revenue basis (above 0, at most 1: 0.3 for "
            "a 30% margin).",
        ),
    ] = 1.0,
    alias: Annotated[
        str, typer.Option(help="Registry alias of the churn model to read.")
    ] = registry.CHAMPION,
    keep: Annotated[
        bool, typer.Option("--store/--no-store", help="Also keep the table in the store.")
    ] = True,
    out_table: connectors.OutTable = None,
    events_table: connectors.EventsTable = None,
    events_query: connectors.EventsQuery = None,
    customers_table: connectors.CustomersTable = None,
    customers_query: connectors.CustomersQuery = None,
    mapping: connectors.MappingFile = None,
    engine: EngineOption = "polars",
    spark_master: SparkMasterOption = DEFAULT_MASTER,
) -> None:
    """Compute every customer's value (P(alive), CLV two ways, equity at risk); write it."""
    from serving.settings import get_settings

    console = Console()
    if value_basis not in ("auto", *BASES):
        raise typer.BadParameter(
            f"{value_basis!r}: choose auto, {', '.join(BASES)}", param_hint="--value-basis"
        )
    check_margin_rate(margin_rate)
    if events is None and events_table is None:
        # unlike guanxi score, which scores the stored snapshot alone, value needs the orders
        raise typer.BadParameter(
            "guanxi value fits its models on the events' orders, which the store's snapshot "
            "does not hold: name the events (a file or a database URI, or, with --engine spark, "
            "a Spark table with --events-table); the store's snapshot of the day is read when "
            "it has one",
            param_hint="--events",
        )
    sources = connectors.inputs_or_table(
        events, events_table, events_query, customers, customers_table, customers_query, mapping,
        engine,
    )  # fmt: skip
    connectors.check_output(out, out_table)
    future = after_today(as_of.date())
    if future is not None:  # was a snapshot of that day kept, then a BG/NBD fit that failed
        console.print(f"[red]cannot value customers, nothing written:[/red] {future}")
        raise typer.Exit(1)
    home = get_settings().home
    require_tracking(console, home, "value customers")
    day = as_of.date()
    try:  # before the build, which gives the snapshot the model's categories, as score's does
        churn = load_churn(alias)
    except ValueError as exc:  # a model of another feature set
        console.print(f"[red]cannot value customers, nothing written:[/red] {exc}")
        raise typer.Exit(1) from exc
    warned: list[str] = []

    def fresh(events: Loaded | Staged | StagedOrders | date, label: str) -> None:
        warning = refuse_stale_events(
            events,
            day,
            label,
            then=", and so would the values fitted on them",
            also=", and so do the values fitted on them",
        )
        if warning is not None:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
            warned.append(warning)

    with ExitStack() as stack:
        try:
            frame, snapshot, source, last_event = stack.enter_context(
                _validated(
                    sources, Store(home), day, engine, spark_master, keep, churn.categories, fresh
                )
            )
        except EventsValidationError as exc:
            console.print(f"[red]cannot value customers, nothing written:[/red] {exc}")
            raise typer.Exit(1) from exc
        except StaleEventsError as exc:  # was built, kept and valued (qa43 H1)
            console.print(f"[red]cannot value customers, nothing written:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc
        except NoCustomerError as exc:  # the snapshot built here holds no customer
            said = f"{exc}: choose a later --as-of"
            console.print(f"[red]cannot value customers, nothing written:[/red] {said}")
            raise typer.Exit(1) from exc
        console.print(f"snapshot as of {day}: {snapshot.height:,} customers, {source}")
        if snapshot.is_empty():  # was BG/NBD's "no customer has a repeat purchase"
            said = f"{no_event_by(_first_event(frame), day)}: choose a later --as-of"
            console.print(f"[red]cannot value customers, nothing written:[/red] {said}")
            raise typer.Exit(1)
        if keep:  # before the fit, after the refusals of the inputs, which keep no value table
            warn_unsigned(
                console,
                "the value table",
                "does not serve it (its value routes answer 404)",
                skip="--no-store",
            )
        try:
            run = compute_values(
                frame,
                snapshot,
                day,
                horizon_days=horizon_days,
                discount_rate=discount_rate,
                basis=value_basis,
                margin_rate=margin_rate,
                alias=alias,
                engine=engine,
                spark_master=spark_master,
                last_event=last_event,
                loaded_churn=churn,
            )
        except ValueError as exc:  # ModelIdentificationError included
            console.print(f"[red]cannot value customers, no values written:[/red] {exc}")
            raise typer.Exit(1) from exc
    print_values(console, run)
    try:
        where = connectors.write_output(run.table, out, out_table)
    except DatabaseError as exc:
        console.print(f"[red]cannot write the values:[/red] {exc}")
        raise typer.Exit(1) from exc
    label = sources.label if isinstance(sources, connectors.SparkEvents) else sources.events.label
    run_id, info = keep_values(
        run,
        home,
        store=keep,
        sources={"events": label},
        events_warning=warned[0] if warned else None,
    )
    console.print(f"wrote {run.table.height:,} rows to {where}; MLflow run {run_id}")
    if info is not None:
        console.print(f"kept in the store ({info.path})")


def _first_event(frame: pl.DataFrame | pl.LazyFrame | SparkDataFrame) -> pl.DataFrame:
    """Return the events' first ``ts`` as a frame of one row (null when there is none)."""
    if isinstance(frame, pl.DataFrame | pl.LazyFrame):
        return frame.lazy().select(pl.col("ts").min()).collect()
    first = frame.agg({"ts": "min"}).first()  # on Spark: the one number, not the table
    return pl.DataFrame({"ts": [first[0] if first is not None else None]})


@contextmanager
def _validated(
    sources: connectors.Inputs | connectors.SparkEvents,
    store: Store,
    day: date,
    engine: Engine,
    master: str,
    keep: bool,
    categories: list[str] | None = None,
    check: EventsCheck | None = None,
) -> Iterator[
    tuple[pl.DataFrame | pl.LazyFrame | SparkDataFrame, pl.DataFrame, str, datetime | None]
]:
    """Yield the validated events, the snapshot of ``day``, where it came from, the last event.

    Events are validated as ``guanxi features build`` validates them: in memory when few or with
    ``--engine spark``, else staged in a temporary directory that lives as long as the context
    (:func:`pipelines.snapshot.validated_events`), and yielded as a scan of those files. When the
    store holds the day's snapshot built from these inputs (:func:`pipelines.score.same_inputs`),
    value reads nothing of the events but their orders and the last event's time: many are
    staged with only their orders
    (:func:`pipelines.snapshot.validated_orders`, every event validated), and the scan of those
    comes with that time (else None: the events' own). A Spark table's stay on Spark. A snapshot
    built here is kept in the store with ``keep`` (``--store``), as ``guanxi features build``
    keeps it, so the day's next command (``target``, ``score``, ``value`` again) reads it.
    ``categories``: the churn model's (:attr:`ChurnModel.categories`), which a build gives
    columns and a stored snapshot must have (:func:`pipelines.score.snapshot_for`). ``check``
    is called with the validated events and their label before a snapshot is read or built
    (:func:`pipelines.snapshot.refuse_stale_events`): what it raises leaves the store as it was.
    A Spark table's events are not checked (where they end would take a Spark query).
    """
    now = datetime.now(UTC)
    if isinstance(sources, connectors.SparkEvents):
        from pipelines.spark import events_from_table, spark_session

        snapshot, source, _ = snapshot_for(
            store,
            sources,
            day,
            now,
            master=master,
            keep=keep,
            categories=categories,
            writes_values=True,
        )
        frame, _ = events_from_table(spark_session(master), sources.table, now, sources.mapping)
        yield frame, snapshot, source, None
        return
    status = Console(stderr=True)
    stored = stored_snapshot(store, day)
    # the stored snapshot when built from these inputs (else built again from them, replacing it)
    same = stored is not None and same_inputs(stored, sources, categories) is not False
    if engine == "polars" and same:
        with validated_orders(sources, now, status) as (orders, _, problems):
            events = connectors.accepted(orders, problems)
            if check is not None:  # the values are fitted on them, whatever the snapshot
                check(events, sources.events.label)
            # the stored snapshot (one removed meanwhile is built from the sources, read again)
            snapshot, source, _ = snapshot_for(
                store, sources, day, now, keep=keep, categories=categories, writes_values=True
            )
            last = events.last if isinstance(events, StagedOrders) else None
            yield events.frame, snapshot, source, last
        return
    described = describe_sources(sources)  # before they are read: a file rewritten meanwhile
    validating = (
        nullcontext(sources.load(now))
        if engine == "spark"
        else validated_events(sources, now, status)
    )
    with validating as (loaded, customers, problems):
        accepted = connectors.accepted(loaded, problems)
        if check is not None:  # read or built, the snapshot's values are fitted on them
            check(accepted, sources.events.label)
        people = customers.frame if customers is not None else None
        snapshot, source, _ = snapshot_for(
            store,
            sources,
            day,
            now,
            loaded=(accepted, people),
            keep=keep,
            categories=categories,
            described=described,
            writes_values=True,
        )
        yield accepted.frame, snapshot, source, None
