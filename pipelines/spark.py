"""The Spark engine: feature snapshots and batch scores on Apache Spark, from the project's code.

Nothing here restates a feature, a score or a reason: Spark moves the rows and runs the same
Polars and model code on each piece (``pip install 'guanxi[spark]'``; Java 17).

Snapshots (:func:`build_snapshot_spark`)
    Events, and the customers table when there is one, are grouped by a hash bucket of
    ``customer_id`` (``pmod(xxhash64(customer_id), buckets)``), so each customer's rows meet in
    one bucket, and :func:`features.snapshot.build_snapshot` runs unchanged on each bucket
    through ``groupBy(bucket).applyInArrow`` (``cogroup`` with the customers), on the rows in
    whatever order the shuffle delivered them: no feature depends on the order of a customer's
    events (float sums are added in integers, :func:`features.window.exact_sum`, and the latest
    survey on equal timestamps is the higher score). The output is cast to the snapshot's
    declared Arrow schema (Polars emits ``large_string``; Spark wants ``string``), which is
    itself derived by running ``build_snapshot`` on no rows. Two things are not per
    customer and get a pass over all the data first or last:

    - the product categories that get columns are those of *all* orders up to ``as_of``
      (sanitised by :func:`features.products.category_slugs`), found first and passed to every
      bucket;
    - ``r_score``, ``f_score`` and ``m_score`` rank every customer with orders, so the
      per-bucket values are replaced: each bucket also emits the measures the scores rank
      (:data:`features.rfm.RFM_SCORES`, computed by the same Polars expressions), Spark counts
      the rows holding each distinct value, :func:`features.rfm.score_counts` scores the values
      from the added counts on the driver (one row per distinct value: days of recency, order
      counts, spend in cents) and a broadcast join puts the scores back;
      ``rfm_segment`` is recomputed from them with :func:`features.rfm.rfm_segment`.

    Every column then equals the Polars engine's exactly, floats to the last bit: their sums
    and means are added in integers (:func:`features.window.exact_sum`), in no particular order.

Scores (:func:`score_spark`)
    Each partition of the snapshot is turned into model input rows by
    :func:`models.tasks.model_frame` and explained by :func:`models.scoring.reason_columns`
    (exact TreeSHAP and the registry's sentences; a ranked task's customers on their top
    :data:`~models.scoring.EXPLAINED_CATEGORIES` rows only, as in batch) through
    ``mapInArrow``; the score comes from ``mlflow.pyfunc.spark_udf`` on the registered model
    (``env_manager="local"``: the executors' own Python), the same model the API serves. The
    model reaches the executors as the bytes of its bundle files (checked against their SHA-256
    when loaded, never unpickled). Only the task's population is scored
    (:func:`models.tasks.population_status`); every other customer gets one row with its status,
    as in :func:`models.scoring.score_snapshot`. Deciles rank
    all rows of the population, as :func:`models.ranking.deciles` does (ties by snapshot order then
    category order): Spark counts the rows per distinct score, the driver adds up the counts of
    higher scores, and a window over each tie numbers the tied rows. A ranked task ranks the
    customers' best rows that way and places every other row among their scores, as
    :func:`models.ranking.ranked_deciles` does (the driver counts the best scores above each
    distinct score; a row never ranks above its customer's best).

Both functions take and return Spark DataFrames: read events from Parquet paths (``hdfs://``,
``s3a://``, local) or catalog tables with :func:`read_table` and write with :func:`write_table`,
and the same code runs on a cluster (``--spark-master spark://host:7077`` or ``spark-submit``).
:func:`snapshot_with_spark` and :func:`scores_with_spark` are what ``guanxi features build`` and
``guanxi score`` call with ``--engine spark``.

Customer value (:func:`purchase_summary_spark`, :func:`value_table_spark`)
    The repeat-purchase summaries are computed per bucket with the Polars function; BG/NBD and
    Gamma-Gamma are fitted on the driver (a handful of parameters); each customer's value is
    computed per bucket with the Polars function and the fitted models, and the value tier, which
    ranks every customer, over all rows. :func:`value_steps` is what ``guanxi value --engine
    spark`` calls.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl
import pyarrow as pa
from rich.console import Console
from rich.text import Text

from features.contracts import event_schema
from features.events import MAX_LISTED_ROWS, EventsValidationError, Problem, validate_events
from features.products import category_slugs
from features.rfm import RFM_SCORES, rfm_segment, score_counts
from features.snapshot import build_snapshot
from features.sources import TableMapping, load_customers
from features.value import repeat_purchase_summary
from models.artifact import ModelBundle, apply_calibration
from models.clv import value_tier
from models.clv.customers import ValueFit, value_table
from models.scoring import (
    EXPLAINED_CATEGORIES,
    REASON_FIELDS,
    SCORE_COLUMNS,
    model_rows,
    reason_columns,
    top_rows,
    with_reasons,
)
from models.tasks import (
    ELIGIBLE,
    NO_CANDIDATES,
    get_task,
    population_status,
)
from pipelines.connectors import SparkEvents
from pipelines.engine import DEFAULT_MASTER, SPARK_EXTRA

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "DEFAULT_BUCKETS",
    "EVENTS_PER_BUCKET",
    "LOG_LEVEL_ENV",
    "buckets_for",
    "build_snapshot_spark",
    "events_from_table",
    "purchase_summary_spark",
    "read_table",
    "score_spark",
    "scores_with_spark",
    "snapshot_from_table",
    "snapshot_with_spark",
    "spark_log_level",
    "spark_session",
    "value_steps",
    "value_table_spark",
    "write_table",
]

DEFAULT_BUCKETS: Final = 64
"""Hash buckets of ``customer_id`` per snapshot; each bucket is built in one Python call."""

EVENTS_PER_BUCKET: Final = 1_000_000
"""Events per hash bucket that :func:`buckets_for` aims at: one Python call's working memory."""

_BUCKET: Final = "_guanxi_bucket"
_KEY: Final = "_guanxi_key_"
"""Prefix of the per-bucket columns holding the measures the RFM scores rank."""
_CATEGORY_POS: Final = "_guanxi_category_pos"
_ROW: Final = "_guanxi_row"
_PROBLEM_SCHEMA: Final = pa.schema(
    [
        pa.field("column", pa.string()),
        pa.field("message", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("n_rows", pa.int64()),
        pa.field("key", pa.string()),
        pa.field("keys", pa.list_(pa.string())),
    ]
)
"""One problem found in one bucket of a Spark table's events, as Spark hands it back."""
_STATUS_SCHEMA: Final = pa.schema(
    [pa.field("customer_id", pa.string()), pa.field("status", pa.string())]
)


LOG_LEVEL_ENV: Final = "GUANXI_SPARK_LOG_LEVEL"
"""Spark's log level for the commands (``ERROR`` unless set: ``WARN``, ``INFO``, ``DEBUG``...)."""

_LOG_LEVELS: Final = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")
"""The levels ``SparkContext.setLogLevel`` takes."""

_QUIET_LOG4J2: Final = """\
# guanxi's Spark logging: errors only, on standard error, in Spark's own pattern
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# the loggers a shell's level is read from (PySpark's gateway counts as a shell): at the root's
# level, Spark prints no "Setting default log level" note
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""
"""A log4j2 configuration for the driver JVM that keeps its start-up warnings off the console:
Spark's "default log4j profile" notes, the loopback hostname, ``NativeCodeLoader``... all come
before the context exists, so ``setLogLevel`` is too late for them."""

_PANDAS_3_WARNING: Final = r"PySpark does not yet fully support pandas >= 3\.0\.0"
"""The start of the ``FutureWarning`` PySpark 4.3 gives for pandas 3 (``docs/spark.md``)."""


def spark_log_level() -> str:
    """Return Spark's log level for this process: ``GUANXI_SPARK_LOG_LEVEL``, else ``ERROR``.

    Raises
    ------
    ValueError
        If the variable names no level ``SparkContext.setLogLevel`` takes.
    """
    level = os.environ.get(LOG_LEVEL_ENV, "").strip().upper() or "ERROR"
    if level not in _LOG_LEVELS:
        levels = ", ".join(_LOG_LEVELS)
        raise ValueError(f"{LOG_LEVEL_ENV}={level}: not a Spark log level ({levels})")
    return level


def _quiet_log4j2() -> Path:
    """Write :data:`_QUIET_LOG4J2` to a new file of this user's (removed once the JVM runs)."""
    fd, name = tempfile.mkstemp(prefix="guanxi-spark-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as file:
        file.write(_QUIET_LOG4J2)
    return Path(name)


def _say(message: str) -> None:
    """Print a progress line on standard error, where the commands' other progress goes."""
    Console(stderr=True).print(Text(message, style="dim"))


def spark_session(
    master: str = DEFAULT_MASTER, app_name: str = "guanxi", config: Mapping[str, str] | None = None
) -> SparkSession:
    """Start (or join) a Spark session set up for guanxi.

    The session's time zone is UTC (snapshot days are UTC days), Arrow transfers are on, and
    unless ``PYSPARK_PYTHON`` says otherwise the Python workers run this interpreter (so they
    import the same guanxi and libraries). Spark logs errors only unless ``GUANXI_SPARK_LOG_LEVEL``
    asks for more (:func:`spark_log_level`): a driver started here reads a log4j2 configuration
    of errors only (its start-up warnings come before the context exists), and the context's
    level is set with ``setLogLevel``; with another level the driver starts with Spark's own
    logging configuration (or ``spark.driver.extraJavaOptions`` of ``config``) and that level.
    PySpark's ``FutureWarning`` about pandas 3 is not shown (that warning only: ``docs/spark.md``).
    Starting a new session prints "starting Spark (<master>) ..." on standard error.

    Parameters
    ----------
    master : str
        Spark master URL: ``local[*]``, ``local[2]``, ``spark://host:7077``, ``yarn``, ...
        Ignored when a session already runs in this process (as under ``spark-submit``).
    app_name : str
        Application name shown by the cluster manager.
    config : mapping of str to str, optional
        Further settings for a session started here, e.g. ``spark.sql.warehouse.dir`` (where
        catalog tables live).

    Returns
    -------
    pyspark.sql.SparkSession
        The session.

    Raises
    ------
    ImportError
        If PySpark is not installed (the message says how to install the ``spark`` extra).
    ValueError
        If ``GUANXI_SPARK_LOG_LEVEL`` names no log level.
    """
    level = spark_log_level()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # PySpark checks the pandas version on import and on its first Arrow calls
    warnings.filterwarnings("ignore", message=_PANDAS_3_WARNING, category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ImportError(
            f"--engine spark needs PySpark, which is not installed: {SPARK_EXTRA} (and Java 17)"
        ) from exc

    settings = dict(config or {})
    starting = SparkSession.getActiveSession() is None
    quiet = None
    if starting and level == "ERROR" and "spark.driver.extraJavaOptions" not in settings:
        # read once, by a driver JVM started here; one that already runs keeps its logging
        quiet = _quiet_log4j2()
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={quiet}"
    builder = SparkSession.builder.master(master).appName(app_name)
    for name, value in settings.items():
        builder = builder.config(name, value)
    if starting:
        _say(f"starting Spark ({master}) ...")
    try:
        session = (
            builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    finally:
        if quiet is not None:
            quiet.unlink(missing_ok=True)
    session.sparkContext.setLogLevel(level)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def read_table(spark: SparkSession, source: str) -> DataFrame:
    """Read a Parquet file or folder, or a catalog table.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session.
    source : str
        A path Spark can read (``/data/events``, ``hdfs://...``, ``s3a://...``; a ``.parquet``
        file or a folder of them), or a table name (``crm.events``) when it holds no ``/`` and
        does not end in ``.parquet``.

    Returns
    -------
    pyspark.sql.DataFrame
        The rows.
    """
    if "/" in source or source.endswith(".parquet"):
        return spark.read.parquet(source)
    return spark.table(source)


def write_table(frame: DataFrame, target: str, mode: str = "overwrite") -> None:
    """Write a DataFrame as Parquet to a path, or as a catalog table.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        Rows to write (e.g. a snapshot or scores).
    target : str
        A path (see :func:`read_table`) or a table name.
    mode : str
        Spark save mode; ``"overwrite"`` replaces what is there.
    """
    if "/" in target or target.endswith(".parquet"):
        frame.write.mode(mode).parquet(target)
    else:
        frame.write.mode(mode).saveAsTable(target)


def _string_types(schema: pa.Schema) -> pa.Schema:
    """Return the same schema with ``large_string`` (Polars' text) as ``string`` (Spark's)."""
    return pa.schema(
        pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f for f in schema
    )


def _frame(table: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    """Return an Arrow table or batch as a Polars frame."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _to_spark_schema(schema: pa.Schema) -> StructType:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _contract_events(events: DataFrame) -> DataFrame:
    """Events with every contract column, typed as the contract declares (absent ones null)."""
    from pyspark.sql import functions as sf

    types = _to_spark_schema(_string_types(pl.DataFrame(schema=event_schema()).to_arrow().schema))
    return events.select(
        *(
            (sf.col(f.name) if f.name in events.columns else sf.lit(None))
            .cast(f.dataType)
            .alias(f.name)
            for f in types.fields
        )
    )


def _snapshot_schema(as_of: date, categories: list[str], customers: pa.Schema | None) -> pa.Schema:
    """Return the declared Arrow schema of a snapshot, from ``build_snapshot`` on no rows."""
    people = None
    if customers is not None:
        people = _frame(customers.empty_table())
    empty = build_snapshot(pl.DataFrame(schema=event_schema()), people, as_of, categories)
    keys = empty.select(measure.alias(_KEY + name) for name, (measure, _) in RFM_SCORES.items())
    return _string_types(pl.concat([empty, keys], how="horizontal").to_arrow().schema)


def _bucket_builder(
    as_of: date, categories: list[str], schema: pa.Schema
) -> Callable[[pa.Table, pa.Table | None], pa.Table]:
    """Return what Spark runs on each bucket: ``build_snapshot`` on its events and customers."""

    def build(events: pa.Table, customers: pa.Table | None) -> pa.Table:
        frame = _frame(events.drop_columns([_BUCKET]))
        if frame.height == 0:
            return schema.empty_table()
        people = None
        if customers is not None:
            people = _frame(customers.drop_columns([_BUCKET]))
        frame = frame.cast(event_schema())  # type: ignore[arg-type]
        snapshot = build_snapshot(frame, people, as_of, categories)
        keys = (measure.alias(_KEY + name) for name, (measure, _) in RFM_SCORES.items())
        return snapshot.with_columns(keys).to_arrow().cast(schema)

    return build


def buckets_for(events: DataFrame) -> int:
    """Return how many hash buckets of ``customer_id`` to build these events in.

    Enough for :data:`EVENTS_PER_BUCKET` events per bucket, and at least two per core of the
    session (``defaultParallelism``) so every core has work.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        The events (counted once; a Parquet read counts from the files' footers).

    Returns
    -------
    int
        The number of buckets.
    """
    cores = events.sparkSession.sparkContext.defaultParallelism
    return max(2 * cores, -(-events.count() // EVENTS_PER_BUCKET))


def _global_categories(events: DataFrame, as_of: date) -> list[str]:
    """Sanitised categories of all orders up to ``as_of``, sorted (as ``build_snapshot``'s own)."""
    from pyspark.sql import functions as sf

    raw = (
        _seen(events, as_of)
        .where(sf.col("event_type") == "order")
        .select("category")
        .where(sf.col("category").isNotNull())
        .distinct()
        .toArrow()
    )
    names = _frame(raw)
    return sorted(set(category_slugs(names["category"].to_list())))


def _bucket(buckets: int) -> Column:
    """``pmod(xxhash64(customer_id), buckets)``: the hash bucket of a customer's rows."""
    from pyspark.sql import functions as sf

    return sf.pmod(sf.xxhash64("customer_id"), sf.lit(buckets)).alias(_BUCKET)


def _seen(events: DataFrame, as_of: date) -> DataFrame:
    """Events a snapshot as of ``as_of`` may see (``ts`` before the next UTC midnight)."""
    from pyspark.sql import functions as sf

    day_after = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return events.where(sf.col("ts") < sf.lit(day_after))


def _problem_rows(problems: list[Problem]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "column": p.column,
                "message": p.message,
                "severity": p.severity,
                "n_rows": p.n_rows,
                "key": p.key,
                "keys": list(p.keys),
            }
            for p in problems
        ],
        schema=_PROBLEM_SCHEMA,
    )


def _merged_problems(rows: pl.DataFrame, label: str) -> list[Problem]:
    """Add up the buckets' problems: one per column and message, rows counted over all buckets.

    A Spark table has no row order, so rows are named by key values when the table has a key
    (the mapping's ``key``) and otherwise counted in the message.
    """
    merged = rows.group_by("column", "message", "severity", "key", maintain_order=True).agg(
        pl.col("n_rows").sum(), pl.col("keys").explode().drop_nulls().head(MAX_LISTED_ROWS)
    )
    problems = []
    for column, message, severity, key, n_rows, keys in merged.iter_rows():
        counted = f" ({n_rows:,} row{'s' if n_rows != 1 else ''})" if n_rows and not key else ""
        problems.append(
            Problem(
                label,
                column,
                message + counted,
                n_rows=n_rows,
                severity=severity,
                key=key,
                keys=tuple(keys),
            )
        )
    return sorted(problems, key=lambda p: p.severity != "error")


def events_from_table(
    spark: SparkSession,
    name: str,
    now: datetime,
    mapping: TableMapping | None = None,
    buckets: int = DEFAULT_BUCKETS,
) -> tuple[DataFrame, list[Problem]]:
    """Read a catalog table's events on Spark and validate them against the events contract.

    The table (``spark.table(name)``: ``events`` or ``db.events``) is renamed and its event codes
    translated by the mapping, then :func:`features.events.validate_events` runs unchanged on
    each hash bucket of ``customer_id`` (so exact duplicates, which share a customer, meet in one
    bucket). Only the problems come back to the driver; the buckets' problems are added up per
    column and message. The validated rows stay on Spark: a second pass over the buckets yields
    them typed as the contract declares.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session whose catalog holds the table.
    name : str
        The table, ``name`` or ``db.name``.
    now : datetime.datetime
        The current time; events after it are errors.
    mapping : features.sources.TableMapping, optional
        The events' column mapping (``--mapping``); its ``key`` names rows in problems.
    buckets : int
        Hash buckets of ``customer_id``.

    Returns
    -------
    events : pyspark.sql.DataFrame
        The validated events (the contract's columns and types).
    warnings : list of features.events.Problem
        Problems that did not stop the load.

    Raises
    ------
    features.events.EventsValidationError
        With every problem, if any is an error: a missing table, a mapped or required column the
        table lacks, and every row-level problem of the contract; each names the table.
    """
    mapping = mapping or TableMapping()
    label = f"Spark table {name}"
    if not spark.catalog.tableExists(name):
        raise EventsValidationError([Problem(label, None, "no such table in the Spark catalog")])
    raw = spark.table(name)
    problems = mapping.check(raw.columns, label)
    if problems:
        raise EventsValidationError(problems)
    raw = raw.withColumnsRenamed({s: t for t, s in mapping.columns.items() if s != t})
    if mapping.codes and "event_type" in raw.columns:
        from pyspark.sql import functions as sf

        raw = raw.withColumn("event_type", sf.col("event_type").cast("string"))
        raw = raw.replace(mapping.codes, subset=["event_type"])  # type: ignore[arg-type]
    key = mapping.contract_key()
    try:  # the table's columns and types first, on no rows: a missing column stops here
        validate_events(_frame(raw.limit(0).toArrow()), now=now, file=label, key=key)
    except EventsValidationError as error:
        raise EventsValidationError([mapping.rename_problem(p) for p in error.problems]) from None
    grouped_by = raw.select(_bucket(buckets), "*").groupBy(_BUCKET)

    def check(table: pa.Table) -> pa.Table:
        frame = _frame(table.drop_columns([_BUCKET]))
        try:
            found = list(validate_events(frame, now=now, file=label, key=key).warnings)
        except EventsValidationError as error:
            found = error.problems
        return _problem_rows(found)

    rows = _frame(grouped_by.applyInArrow(check, _to_spark_schema(_PROBLEM_SCHEMA)).toArrow())
    problems = [mapping.rename_problem(p) for p in _merged_problems(rows, label)]
    if any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    schema = _string_types(pl.DataFrame(schema=event_schema()).to_arrow().schema)

    def typed(table: pa.Table) -> pa.Table:
        frame = _frame(table.drop_columns([_BUCKET]))
        return validate_events(frame, now=now, file=label, key=key).frame.to_arrow().cast(schema)

    return grouped_by.applyInArrow(typed, _to_spark_schema(schema)), problems


def _global_rfm(spark: SparkSession, snapshot: DataFrame) -> DataFrame:
    """Replace the per-bucket RFM scores and segments by the ones over all customers."""
    from pyspark.sql import functions as sf

    with_orders = snapshot.where(sf.col("orders_total") > 0)
    scored = snapshot
    for name, (_, higher_is_better) in RFM_SCORES.items():
        key = _KEY + name
        counts = _frame(with_orders.groupBy(key).count().toArrow())
        table = score_counts(counts.rename({key: "value"}), higher_is_better=higher_is_better)
        lookup = spark.createDataFrame(table.rename({"value": key, "score": f"_{name}"}).to_arrow())
        scored = scored.join(sf.broadcast(lookup), on=key, how="left")
    pairs = pl.DataFrame(
        {"r": [r for r in range(1, 6) for _ in range(5)], "f": list(range(1, 6)) * 5}
    )
    segments = pairs.select(
        pl.col("r").alias("_r_score"),
        pl.col("f").alias("_f_score"),
        rfm_segment(pl.col("r"), pl.col("f")).alias("_rfm_segment"),
    )
    lookup = spark.createDataFrame(segments.to_arrow())
    scored = scored.join(sf.broadcast(lookup), on=["_r_score", "_f_score"], how="left")
    replaced = {c: f"_{c}" for c in (*RFM_SCORES, "rfm_segment")}
    columns = [c for c in snapshot.columns if not c.startswith(_KEY)]
    return scored.select(
        *(
            sf.col(replaced[c]).cast(snapshot.schema[c].dataType).alias(c) if c in replaced else c
            for c in columns
        )
    )


def build_snapshot_spark(
    events: DataFrame,
    customers: DataFrame | None,
    as_of: date,
    categories: list[str] | None = None,
    buckets: int | None = None,
) -> DataFrame:
    """Build the feature snapshot as of a day on Spark, equal to :func:`build_snapshot`'s.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        Validated events (the contract's columns; absent optional ones are taken as null).
    customers : pyspark.sql.DataFrame, optional
        The customers table, one row per customer.
    as_of : datetime.date
        The snapshot day (UTC).
    categories : list of str, optional
        Categories that get columns; ``None`` takes those of all orders up to ``as_of``, as
        :func:`build_snapshot` does.
    buckets : int, optional
        Hash buckets of ``customer_id``; each is built in one Python call, in memory. ``None``
        sizes them by the events (:func:`buckets_for`).

    Returns
    -------
    pyspark.sql.DataFrame
        The snapshot's rows (columns and types as :func:`build_snapshot`'s, in no particular
        row order; sort by ``customer_id`` to compare).

    Raises
    ------
    ValueError
        If ``buckets`` is not positive.
    """
    if buckets is None:
        buckets = buckets_for(events)
    if buckets < 1:
        raise ValueError(f"buckets must be positive, got {buckets}")
    spark = events.sparkSession
    seen = _seen(_contract_events(events), as_of)
    cats = _global_categories(seen, as_of) if categories is None else category_slugs(categories)
    bucket = _bucket(buckets)
    grouped = seen.select(bucket, "*").groupBy(_BUCKET)
    people_schema = None
    if customers is not None:
        people_schema = _string_types(customers.limit(0).toArrow().schema)
    schema = _snapshot_schema(as_of, cats, people_schema)
    build = _bucket_builder(as_of, cats, schema)
    spark_schema = _to_spark_schema(schema)
    if customers is None:
        per_bucket = grouped.applyInArrow(lambda events: build(events, None), spark_schema)
    else:
        people = customers.select(bucket, "*").groupBy(_BUCKET)
        per_bucket = grouped.cogroup(people).applyInArrow(build, spark_schema)
    # built once: the RFM pass reads the buckets' output four times (three counts, one join)
    return _global_rfm(spark, per_bucket.localCheckpoint())


@lru_cache(maxsize=4)
def _load_bundle(files: tuple[tuple[str, bytes], ...]) -> ModelBundle:
    """Load a bundle shipped as file bytes (once per worker process and bundle)."""
    with tempfile.TemporaryDirectory(prefix="guanxi-bundle-") as tmp:
        for name, data in files:
            (Path(tmp) / name).write_bytes(data)
        return ModelBundle.load(Path(tmp))


def _bundle_files(bundle: ModelBundle) -> tuple[tuple[str, bytes], ...]:
    """Return the bundle's files as bytes, to ship to the executors."""
    with tempfile.TemporaryDirectory(prefix="guanxi-bundle-") as tmp:
        bundle.save(Path(tmp))
        return tuple((p.name, p.read_bytes()) for p in sorted(Path(tmp).iterdir()))


def _reason_schema(explain_k: int, n_features: int) -> list[pa.Field]:
    """List the columns :func:`models.scoring.reason_columns` adds, in its order and types."""
    if explain_k <= 0:
        return []
    text = {"feature", "group", "sentence"}
    fields = [pa.field("base_logodds", pa.float64()), pa.field("base_probability", pa.float64())]
    for i in range(1, min(explain_k, n_features) + 1):
        for source, suffix in REASON_FIELDS.items():
            kind = pa.string() if source in text else pa.float64()
            fields.append(pa.field(f"reason_{i}_{suffix}", kind))
    fields += [
        pa.field("other_inputs", pa.int64()),
        pa.field("other_points", pa.float64()),
        pa.field("other_logodds", pa.float64()),
    ]
    return fields


def _status_maker(
    task: str, metadata: dict[str, object]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Return the function Spark runs on each partition: every customer's status for the task."""

    def statuses(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            found = population_status(task, _frame(batch), metadata)
            yield from found.to_arrow().cast(_STATUS_SCHEMA).to_batches()

    return statuses


def _row_maker(
    files: tuple[tuple[str, bytes], ...], explain_k: int, schema: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Return the function Spark runs on each partition: model input rows, margins and reasons."""

    def rows(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        bundle = _load_bundle(files)
        position = {c: i for i, c in enumerate(bundle.categories)}
        ranked = get_task(bundle.task).kind == "ranked"
        for batch in batches:
            snapshot = _frame(batch)
            status = population_status(bundle.task, snapshot, bundle.metadata)["status"]
            population = snapshot.filter(status == ELIGIBLE)
            x = model_rows(bundle, population)
            if len(x) == 0:
                continue
            margin = bundle.predict_margin(x)
            index = x.index.to_frame(index=False)
            keys = pl.DataFrame(
                {
                    "customer_id": index["customer_id"].astype(str).to_numpy(),
                    "category": index["category"].astype(str).to_numpy()
                    if "category" in index
                    else [None] * len(x),
                    "margin": margin,
                },
                schema={"customer_id": pl.String, "category": pl.String, "margin": pl.Float64},
            ).with_columns(
                pl.col("category")
                .replace_strict(position, default=-1, return_dtype=pl.Int64)
                .fill_null(-1)
                .alias(_CATEGORY_POS)
            )
            table = pl.concat([keys, pl.from_pandas(x.reset_index(drop=True))], how="horizontal")
            if explain_k > 0 and ranked:  # a customer's rows are all in this batch
                top = top_rows(
                    keys.get_column("customer_id").to_numpy(),
                    apply_calibration(bundle.calibration, margin),
                    EXPLAINED_CATEGORIES,
                )
                reasons = reason_columns(bundle, x.iloc[top], explain_k, margin=margin[top])
                table = with_reasons(table, reasons, top)
            elif explain_k > 0:
                reasons = reason_columns(bundle, x, explain_k, margin=margin)
                table = pl.concat([table, reasons], how="horizontal")
            yield from table.to_arrow().select(schema.names).cast(schema).to_batches()

    return rows


def _row_numbers(rows: DataFrame) -> tuple[DataFrame, int]:
    """Add ``_ROW``: rows by score, highest first, ties by customer then category order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    counts = _frame(rows.groupBy("score").count().toArrow())
    total = int(counts["count"].sum())
    higher = counts.sort("score", descending=True).select(
        "score", (pl.col("count").cum_sum() - pl.col("count")).alias("_higher")
    )
    tie = Window.partitionBy("score").orderBy("customer_id", _CATEGORY_POS)
    above = sf.broadcast(rows.sparkSession.createDataFrame(higher.to_arrow()))
    numbered = (
        rows.join(above, "score", "left")
        .withColumn(_ROW, sf.col("_higher") + sf.row_number().over(tie) - 1)
        .drop("_higher")
    )
    return numbered, total


def _ranked_deciles(rows: DataFrame) -> DataFrame:
    """Add ``decile`` as :func:`models.ranking.ranked_deciles` gives it, on Spark."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    first = Window.partitionBy("customer_id").orderBy(sf.desc("score"), _CATEGORY_POS)
    rows = rows.withColumn("_best", sf.row_number().over(first) == 1).localCheckpoint()
    best, n_best = _row_numbers(rows.filter("_best"))
    best = best.select(
        "customer_id", (sf.expr(f"{_ROW} * 10 div {max(n_best, 1)}") + 1).alias("_best_decile")
    )
    best_counts = _frame(rows.filter("_best").groupBy("score").count().toArrow()).sort("score")
    scores = _frame(rows.select("score").distinct().toArrow()).get_column("score").to_numpy()
    at_most = np.searchsorted(best_counts.get_column("score").to_numpy(), scores, side="right")
    below = np.r_[0, best_counts.get_column("count").cum_sum().to_numpy()][at_most]
    among = pl.DataFrame(
        {
            "score": scores,
            "_among": np.minimum(1 + (10 * (n_best - below)) // max(n_best, 1), 10),
        }
    )
    spark = rows.sparkSession
    return (
        rows.join(best, "customer_id", "left")
        .join(sf.broadcast(spark.createDataFrame(among.to_arrow())), "score", "left")
        .withColumn(
            "decile",
            sf.when(sf.col("_best"), sf.col("_best_decile")).otherwise(
                sf.greatest(sf.col("_among"), sf.col("_best_decile"))
            ),
        )
        .drop("_best", "_best_decile", "_among")
    )


def score_spark(
    snapshot: DataFrame,
    bundle: ModelBundle,
    model_uri: str,
    explain_k: int = 0,
) -> DataFrame:
    """Score (and explain) every customer of a snapshot on Spark, as :func:`score_snapshot` does.

    Parameters
    ----------
    snapshot : pyspark.sql.DataFrame
        A feature snapshot (e.g. from :func:`build_snapshot_spark` or :func:`read_table`).
    bundle : ModelBundle
        The registered model's bundle (:func:`models.registry.load_model`); its reasons and
        margins are computed on the executors.
    model_uri : str
        The same model's MLflow URI (``models:/churn/3``), scored with
        ``mlflow.pyfunc.spark_udf``.
    explain_k : int
        Reasons per row; 0 for none.

    Returns
    -------
    pyspark.sql.DataFrame
        The columns of :func:`models.scoring.score_snapshot` in its order (row order: snapshot
        order by ``customer_id``, then the model's category order).
    """
    import mlflow.pyfunc
    from pyspark.sql import functions as sf

    spark = snapshot.sparkSession
    registry = bundle.metadata.get("registry", {})
    name = str(registry.get("name", bundle.task))
    version = registry.get("version")
    features = list(bundle.feature_names)
    schema = pa.schema(
        [
            pa.field("customer_id", pa.string()),
            pa.field("category", pa.string()),
            pa.field(_CATEGORY_POS, pa.int64()),
            pa.field("margin", pa.float64()),
            *(pa.field(f, pa.float64()) for f in features),
            *_reason_schema(explain_k, len(features)),
        ]
    )
    rows = snapshot.mapInArrow(
        _row_maker(_bundle_files(bundle), explain_k, schema),
        _to_spark_schema(schema),
    )
    predict = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")
    rows = rows.withColumn("score", predict(sf.struct(*features))).localCheckpoint()
    if get_task(bundle.task).kind == "ranked":
        rows = _ranked_deciles(rows)
    else:
        rows, total = _row_numbers(rows)
        rows = rows.withColumn("decile", sf.expr(f"{_ROW} * 10 div {max(total, 1)}") + 1)
    reasons = [f.name for f in _reason_schema(explain_k, len(features))]
    scored = rows.select(
        "customer_id",
        "category",
        sf.lit(bundle.task).alias("task"),
        "score",
        sf.col("decile").cast("byte").alias("decile"),
        "margin",
        sf.lit(name).alias("model_name"),
        sf.lit(None if version is None else str(version)).cast("string").alias("model_version"),
        sf.lit(bundle.feature_set_version).alias("feature_set_version"),
        sf.lit(ELIGIBLE).alias("status"),
        *reasons,
        _CATEGORY_POS,
    )
    # every customer outside the population (or with nothing to rank) gets one row and a status;
    # built once: the final sort's range partitioner reads its input in a job of its own, which
    # ran this Python pass over the whole snapshot a second time
    statuses = snapshot.mapInArrow(
        _status_maker(bundle.task, dict(bundle.metadata)), _to_spark_schema(_STATUS_SCHEMA)
    ).localCheckpoint()
    unscored = statuses.join(
        scored.select("customer_id").distinct(), "customer_id", "left_anti"
    ).select(
        "customer_id",
        sf.lit(bundle.task).alias("task"),
        sf.lit(name).alias("model_name"),
        sf.lit(None if version is None else str(version)).cast("string").alias("model_version"),
        sf.lit(bundle.feature_set_version).alias("feature_set_version"),
        sf.when(sf.col("status") == ELIGIBLE, sf.lit(NO_CANDIDATES))
        .otherwise(sf.col("status"))
        .alias("status"),
        sf.lit(-1).cast("long").alias(_CATEGORY_POS),
    )
    rows_out = scored.unionByName(unscored, allowMissingColumns=True).select(scored.columns)
    assert tuple(rows_out.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    return rows_out.orderBy("customer_id", _CATEGORY_POS).drop(_CATEGORY_POS)


def _from_polars(spark: SparkSession, frame: pl.DataFrame) -> DataFrame:
    return spark.createDataFrame(frame.to_arrow())


def _to_polars(frame: DataFrame) -> pl.DataFrame:
    return _frame(frame.toArrow())


def snapshot_with_spark(
    events: pl.DataFrame | DataFrame,
    customers: pl.DataFrame | None,
    as_of: date,
    master: str = DEFAULT_MASTER,
) -> pl.DataFrame:
    """Build a snapshot of validated frames on Spark (``guanxi features build --engine spark``).

    Parameters
    ----------
    events : polars.DataFrame or pyspark.sql.DataFrame
        Validated events: a frame of this process, or rows already on Spark
        (:func:`events_from_table`), which never come to the driver.
    customers : polars.DataFrame, optional
        The validated customers table.
    as_of : datetime.date
        The snapshot day.
    master : str
        Spark master URL.

    Returns
    -------
    polars.DataFrame
        The snapshot, sorted by ``customer_id`` and typed as :func:`build_snapshot`'s.
    """
    spark = spark_session(master)
    _say(f"features as of {as_of} on Spark ...")
    people = None if customers is None else _from_polars(spark, customers)
    rows = _from_polars(spark, events) if isinstance(events, pl.DataFrame) else events
    built = build_snapshot_spark(rows, people, as_of)
    return _to_polars(built).sort("customer_id")


def snapshot_from_table(
    source: SparkEvents, as_of: date, now: datetime, master: str = DEFAULT_MASTER
) -> tuple[pl.DataFrame, list[Problem]]:
    """Validate a Spark table's events (and the customers) and build their snapshot on Spark.

    What ``guanxi features build`` and ``guanxi score`` do with ``--engine spark --events-table
    <table>`` and no ``--events``: the events are read, validated and built from where they are
    (:func:`events_from_table`, :func:`build_snapshot_spark`); only the problems and the snapshot
    come to the driver. The customers, a file or a database, are read here as for any command.

    Parameters
    ----------
    source : pipelines.connectors.SparkEvents
        The table, its mapping and the customers.
    as_of : datetime.date
        The snapshot day.
    now : datetime.datetime
        The current time; later timestamps are errors.
    master : str
        Spark master URL.

    Returns
    -------
    snapshot : polars.DataFrame
        As :func:`snapshot_with_spark`'s.
    warnings : list of features.events.Problem
        Problems of both inputs that did not stop the build.

    Raises
    ------
    features.events.EventsValidationError
        With every problem of both inputs, if any is an error.
    """
    spark = spark_session(master)
    _say(f"validating {source.label} on Spark ...")
    rows = None
    try:
        rows, problems = events_from_table(spark, source.table, now, source.mapping)
    except EventsValidationError as error:
        problems = list(error.problems)
    people = None
    if source.customers is not None:
        try:
            loaded = load_customers(source.customers, now=now)
            people, problems = loaded.frame, problems + list(loaded.warnings)
        except EventsValidationError as error:
            problems += error.problems
    if rows is None or any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    return snapshot_with_spark(rows, people, as_of, master), problems


def scores_with_spark(
    bundle: ModelBundle, snapshot: pl.DataFrame, explain_k: int, master: str = DEFAULT_MASTER
) -> pl.DataFrame:
    """Score a snapshot with a registered model on Spark (``guanxi score --engine spark``).

    Parameters
    ----------
    bundle : ModelBundle
        The model, loaded from the registry (``metadata["registry"]`` names its version).
    snapshot : polars.DataFrame
        The snapshot.
    explain_k : int
        Reasons per row; 0 for none.
    master : str
        Spark master URL.

    Returns
    -------
    polars.DataFrame
        What :func:`models.scoring.score_snapshot` returns for the same arguments.
    """
    registry = bundle.metadata.get("registry", {})
    uri = f"models:/{registry.get('name', bundle.task)}/{registry.get('version')}"
    spark = spark_session(master)
    _say(f"scores of {bundle.task} on Spark ...")
    return _to_polars(score_spark(_from_polars(spark, snapshot), bundle, uri, explain_k))


def purchase_summary_spark(
    events: DataFrame, as_of: date, buckets: int = DEFAULT_BUCKETS
) -> DataFrame:
    """Summarise each customer's repeat purchases on Spark, equal to the Polars summary.

    :func:`features.value.repeat_purchase_summary` runs unchanged on each hash bucket of
    ``customer_id`` (``groupBy(bucket).applyInArrow``; a customer's orders meet in one bucket, and
    the summary reads nothing but them), on the rows in the order the shuffle delivered them: the
    summary's sums are exact (:func:`features.window.exact_sum`), the same in any order.

    Parameters
    ----------
    events : pyspark.sql.DataFrame
        Validated events (the contract's columns; absent optional ones are taken as null).
    as_of : datetime.date
        The summaries' day.
    buckets : int
        Hash buckets of ``customer_id``.

    Returns
    -------
    pyspark.sql.DataFrame
        The summary's rows and columns (in no particular row order).

    Raises
    ------
    ValueError
        If ``buckets`` is not positive.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be positive, got {buckets}")
    seen = _seen(_contract_events(events), as_of)
    empty = repeat_purchase_summary(pl.DataFrame(schema=event_schema()), as_of)
    schema = _string_types(empty.to_arrow().schema)

    def summarise(table: pa.Table) -> pa.Table:
        frame = _frame(table.drop_columns([_BUCKET]))
        if frame.height == 0:
            return schema.empty_table()
        frame = frame.cast(event_schema())  # type: ignore[arg-type]
        return repeat_purchase_summary(frame, as_of).to_arrow().cast(schema)

    grouped = seen.select(_bucket(buckets), "*").groupBy(_BUCKET)
    return grouped.applyInArrow(summarise, _to_spark_schema(schema))


def value_table_spark(
    summary: DataFrame,
    snapshot: DataFrame,
    fit: ValueFit,
    *,
    horizon_days: int,
    discount_rate: float,
    churn: DataFrame | None = None,
    churn_horizon_days: float | None = None,
    buckets: int = DEFAULT_BUCKETS,
) -> DataFrame:
    """Compute every customer's value on Spark with the models fitted on the driver.

    :func:`models.clv.customers.value_table` runs on each hash bucket of ``customer_id``
    (summaries, snapshot rows and churn probabilities cogrouped), with the fitted parameters
    shipped to the executors. The value tier ranks every customer, so it is recomputed over all
    rows afterwards (:func:`models.clv.value_tier` on the driver over ``customer_id`` and ``clv``,
    joined back).

    Parameters
    ----------
    summary : pyspark.sql.DataFrame
        :func:`purchase_summary_spark` (or the Polars summary's rows).
    snapshot : pyspark.sql.DataFrame
        The snapshot of the same day.
    fit : models.clv.customers.ValueFit
        The models fitted on the driver.
    horizon_days, discount_rate, churn_horizon_days
        As for :func:`models.clv.customers.value_table`.
    churn : pyspark.sql.DataFrame, optional
        ``customer_id``, ``churn_probability``, ``churn_status``.
    buckets : int
        Hash buckets of ``customer_id``.

    Returns
    -------
    pyspark.sql.DataFrame
        The value table's rows and columns (in no particular row order).
    """
    from pyspark.sql import functions as sf

    features = snapshot.select("customer_id", "rfm_segment", "spend_365d", "margin_365d")
    if churn is not None:
        features = features.join(
            churn.select("customer_id", "churn_probability", "churn_status"),
            on="customer_id",
            how="left",
        )
    features_schema = _string_types(features.limit(0).toArrow().schema)
    summary_schema = _string_types(summary.limit(0).toArrow().schema)
    empty = value_table(
        _frame(summary_schema.empty_table()),
        _frame(features_schema.empty_table()),
        fit,
        horizon_days=horizon_days,
        discount_rate=discount_rate,
        churn=_frame(features_schema.empty_table()) if churn is not None else None,
        churn_horizon_days=churn_horizon_days,
    )
    schema = _string_types(empty.to_arrow().schema)
    with_churn = churn is not None  # the closure must not hold a Spark DataFrame (unpicklable)

    def tabulate(rows: pa.Table, people: pa.Table) -> pa.Table:
        frame = _frame(rows.drop_columns([_BUCKET]))
        if frame.height == 0:
            return schema.empty_table()
        known = _frame(people.drop_columns([_BUCKET]))
        table = value_table(
            frame,
            known,
            fit,
            horizon_days=horizon_days,
            discount_rate=discount_rate,
            churn=known if with_churn else None,
            churn_horizon_days=churn_horizon_days,
        )
        return table.to_arrow().cast(schema)

    per_bucket = (
        summary.select(_bucket(buckets), "*")
        .groupBy(_BUCKET)
        .cogroup(features.select(_bucket(buckets), "*").groupBy(_BUCKET))
        .applyInArrow(tabulate, _to_spark_schema(schema))
        .localCheckpoint()
    )
    tiers = _frame(per_bucket.select("customer_id", "clv").toArrow()).select(
        "customer_id", value_tier(pl.col("clv"))
    )
    lookup = per_bucket.sparkSession.createDataFrame(
        tiers.rename({"value_tier": "_value_tier"}).to_arrow()
    )
    return per_bucket.join(lookup, on="customer_id", how="left").select(
        *(sf.col("_value_tier").alias(c) if c == "value_tier" else c for c in per_bucket.columns)
    )


def value_steps(
    master: str = DEFAULT_MASTER, buckets: int = DEFAULT_BUCKETS
) -> tuple[Callable[..., pl.DataFrame], Callable[..., pl.DataFrame]]:
    """Return the summary and the value table on Spark, as functions of Polars frames.

    ``guanxi value --engine spark`` hands them to :func:`pipelines.value.compute_values` in
    place of :func:`features.value.repeat_purchase_summary` and
    :func:`models.clv.customers.value_table`; the fit between them stays on the driver.

    Parameters
    ----------
    master : str
        Spark master URL.
    buckets : int
        Hash buckets of ``customer_id``.

    Returns
    -------
    tuple of callable
        ``summarize(events, as_of)`` (events in this process or on Spark) and
        ``tabulate(summary, snapshot, fit, **options)``, each returning a Polars frame sorted by
        ``customer_id`` like the function it replaces.
    """

    def summarize(events: pl.DataFrame | DataFrame, as_of: date) -> pl.DataFrame:
        spark = spark_session(master)
        _say(f"purchase summaries as of {as_of} on Spark ...")
        rows = _from_polars(spark, events) if isinstance(events, pl.DataFrame) else events
        summary = purchase_summary_spark(rows, as_of, buckets)
        return _to_polars(summary).sort("customer_id")

    def tabulate(
        summary: pl.DataFrame,
        snapshot: pl.DataFrame,
        fit: ValueFit,
        *,
        horizon_days: int,
        discount_rate: float,
        churn: pl.DataFrame | None = None,
        churn_horizon_days: float | None = None,
    ) -> pl.DataFrame:
        spark = spark_session(master)
        _say("values on Spark ...")
        table = value_table_spark(
            _from_polars(spark, summary),
            _from_polars(spark, snapshot),
            fit,
            horizon_days=horizon_days,
            discount_rate=discount_rate,
            churn=None if churn is None else _from_polars(spark, churn),
            churn_horizon_days=churn_horizon_days,
            buckets=buckets,
        )
        return _to_polars(table).sort("customer_id")

    return summarize, tabulate
