"""``guanxi score``: batch scores (and reasons) for every customer from the registry's models.

The snapshot for ``--as-of`` is read from the store when one exists for that day with the current
feature-set version and was built from the ``--events`` (and ``--customers``) files given, as they
are now, with the same mapping and the categories the models read (a database or Spark table,
which cannot be told unchanged, reads it too, said so); otherwise it is built from them as
``guanxi features build`` builds it (validated first, large inputs staged, not held whole; see
:func:`snapshot_for`), with the categories the models read, and replaces the stored one. A
stored snapshot read alone is scored with the categories it lacks completed, as every reader of it
is (:func:`models.tasks.model_frame`), and each model input the snapshot lacks is named. Without
``--events`` (and the other input options) the store's snapshot is scored, and a day without one is
refused before any work, naming the ways to make it (:func:`require_stored_snapshot`). Each task's
model is loaded from the registry by alias; a model trained on another feature-set version is
refused. Rows and columns are described in :mod:`models.scoring` (plus an ``as_of`` column after
``feature_set_version``); every task's rows go into one file, written atomically (Parquet, or CSV
when ``--out`` ends in ``.csv``), or into one database table (``--out <uri> --out-table <name>``,
replaced in one transaction; see :mod:`pipelines.connectors`).
The file is written as the rows are
made, a batch of customers at a time (:func:`models.scoring.score_batches`, after a first pass that
ranks each task's deciles, :func:`models.scoring.batch_scores`), into a temporary file renamed into
place once every task is written (:func:`pipelines.connectors.write_parts`), so the tasks' tables
are never all held; a database table gets them a batch at a time too, in its one transaction
(:func:`features.database.write_batches`). Each task's table is also kept
in the store for (task, snapshot day, model version), written there a part at a time as the
output gets it, never gathered (:meth:`features.store.Store.writing_scores`; ``--no-store`` skips
it; :func:`store_scores` keeps a whole table), where serving finds it and answers with lookups
instead of computing; serving uses a table with at least 20 reasons per row (``--explain 20``), or
one per model input when the model has fewer. A stored table with more reasons for the same model
and snapshot is kept rather than replaced by a thinner one.
Events a build reads that end more than :data:`features.freshness.STALE_EVENTS_DAYS` days
before ``--as-of`` are refused before the build, nothing written; 2 days short or more, a warning
says so (:func:`pipelines.snapshot.refuse_stale_events`, passed to :func:`snapshot_for`). The
store's snapshot read instead is taken alike by where the events files given end.
With ``--engine spark`` the scores and reasons are computed on Spark
(:func:`pipelines.spark.scores_with_spark`), with the same result; the snapshot still comes from
the store (``guanxi features build --engine spark`` puts it there) or a build in this process.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NamedTuple

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape

from features.contracts import (
    CATEGORY_FEATURE_PREFIX,
    FEATURE_SET_VERSION,
    counted,
    feature_info,
    is_feature,
    quoted_near,
)
from features.database import DatabaseError
from features.events import EventsValidationError, Loaded, Staged, StagedOrders
from features.freshness import StaleEventsError, file_last_day
from features.products import category_slugs
from features.snapshot import complete_categories
from features.sources import Source
from features.store import (
    CustomerRanges,
    ScoreTableInfo,
    ScoreTableWriter,
    SnapshotInfo,
    SnapshotNotFoundError,
    SourceFile,
    Store,
    scores_digest,
    snapshot_digest,
)
from models import registry
from models.artifact import ModelBundle
from models.registry import TrackingUnavailableError, check_tracking, configure_tracking
from models.scoring import (
    BATCH_CUSTOMERS,
    SCORE_COLUMNS,
    batch_scores,
    model_categories,
    score_batches,
    score_schema,
)
from models.tasks import (
    CANDIDATE_INPUTS,
    ELIGIBLE,
    TARGET_PREFIX,
    completed_categories,
    snapshot_categories,
    task_names,
)
from pipelines import connectors
from pipelines.console import warn_unsigned
from pipelines.days import after_today, no_event_by
from pipelines.engine import DEFAULT_MASTER, EngineOption, SparkMasterOption
from pipelines.snapshot import (
    build_validated,
    describe_sources,
    refuse_stale_events,
    validated_events,
)

EventsCheck = Callable[[Loaded | Staged | StagedOrders | date, str], None]
"""A check of validated events (and their source's label) before a snapshot is built of them.

Or of the last event's day of the files given, when the store's snapshot of the day built from
them is read instead (:func:`features.freshness.file_last_day`). Raises to refuse them, nothing
built or kept: ``guanxi score`` passes :func:`pipelines.snapshot.refuse_stale_events` with its own
words (qa43 H1)."""

__all__ = [
    "EventsCheck",
    "NoCustomerError",
    "SnapshotRead",
    "check_task",
    "load_models",
    "missing_inputs",
    "missing_note",
    "model_categories",
    "parse_tasks",
    "require_stored_snapshot",
    "require_tracking",
    "same_inputs",
    "score_command",
    "snapshot_for",
    "store_scores",
    "stored_snapshot",
    "task_parts",
]

logger = logging.getLogger(__name__)


def load_models(tasks: list[str], alias: str) -> dict[str, ModelBundle]:
    """Load ``<task>@<alias>`` for each task and check its feature-set version.

    Parameters
    ----------
    tasks : list of str
        Tasks to load.
    alias : str
        Registry alias, e.g. ``"champion"``.

    Returns
    -------
    dict of str to ModelBundle
        Bundles by task (``metadata["registry"]`` names the version).

    Raises
    ------
    models.registry.ModelNotFoundError
        If a task has no version with the alias.
    models.scoring.FeatureSetMismatchError
        If a model's feature-set version differs from the code's.
    """
    return {task: registry.load_model(task, alias=alias).bundle for task in tasks}


class NoCustomerError(ValueError):
    """No customer has an event on or before the snapshot day (:func:`snapshot_for`'s build).

    The message is :func:`pipelines.days.no_event_by`'s, which ``guanxi features build`` refuses
    such a day with; nothing is kept.
    """


def _from_customers(name: str) -> bool:
    """Whether a model input comes from the customers file (``profile``, or passed through)."""
    return not is_feature(name) or feature_info(name).group == "profile"


def missing_inputs(
    bundle: ModelBundle, snapshot: pl.DataFrame, customers: bool = True
) -> list[str]:
    """Return the inputs a model reads that the snapshot lacks, in the model's order.

    An input lacks when the snapshot has no column of it (a category none of its orders has, a
    customers-file column), or when it comes from the customers file (a ``profile`` feature or
    a column passed through) and the snapshot was built without one (every such input, even
    one the build gives a default: ``is_business`` 0 is no knowledge of the customer) or with
    one that has no value of it for any customer. The model reads them as missing
    (:func:`models.tasks.model_frame` fills NaN, or 0 orders and a 0 share for a category the
    snapshot lacks, :func:`models.tasks.completed_categories`) or as the default;
    ``POST /v1/score`` with features lists an input not sent as ``missing_inputs``. Inputs
    worked out when scoring (a ranked task's :data:`~models.tasks.CANDIDATE_INPUTS` and
    ``target_{category}``) never lack.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    snapshot : polars.DataFrame
        The snapshot it scores.
    customers : bool, default True
        Whether the snapshot was built with a customers file (:attr:`SnapshotRead.customers`).

    Returns
    -------
    list of str
        The inputs, empty when the snapshot has them all.
    """
    computed = {feature.name for feature in CANDIDATE_INPUTS}

    def unknown(name: str) -> bool:
        if not _from_customers(name):
            return False
        if not customers:
            return True
        return snapshot.height > 0 and snapshot[name].null_count() == snapshot.height

    return [
        name
        for name in bundle.feature_names
        if not name.startswith(TARGET_PREFIX)
        and name not in computed
        and (name not in snapshot.columns or unknown(name))
    ]


def missing_note(bundle: ModelBundle, missing: list[str], customers: bool = True) -> str:
    """Say which inputs a model reads that the snapshot lacks (:func:`missing_inputs`), and why.

    Categories are completed (:func:`models.tasks.completed_categories`, which
    :func:`models.tasks.model_frame` gives every reader); the customers file's inputs are scored
    as unknown, or as the default the build gives them without a customers file.

    Parameters
    ----------
    bundle : ModelBundle
        The model (``metadata["registry"]`` names its version).
    missing : list of str
        Its inputs the snapshot lacks, not empty.
    customers : bool, default True
        Whether the snapshot was built with a customers file.

    Returns
    -------
    str
        ``churn v1 reads signup_tenure_days, is_business, which come from a customers file and
        the snapshot was built without one: scored as unknown (is_business as 0)``, with a part
        per reason.
    """
    profile = [n for n in missing if _from_customers(n)]
    categories = [n for n in missing if n not in profile and n.startswith(CATEGORY_FEATURE_PREFIX)]
    other = [n for n in missing if n not in profile and n not in categories]
    parts = []
    if profile and customers:
        parts.append(
            f"{', '.join(profile)}, which the customers file has no value of: scored as unknown"
        )
    elif profile:
        defaults = [
            f"{n} as {feature_info(n).default}"
            for n in profile
            if is_feature(n) and feature_info(n).default is not None
        ]
        said = f" ({', '.join(defaults)})" if defaults else ""
        parts.append(
            f"{', '.join(profile)}, which come from a customers file and the snapshot was built "
            f"without one: scored as unknown{said}"
        )
    if categories:
        parts.append(
            f"{', '.join(categories)}, which the snapshot lacks (categories none of its orders "
            "has): completed as 0 orders and a 0 share of spend, as a build with them gives"
        )
    if other:
        parts.append(f"{', '.join(other)}, which the snapshot lacks: scored as unknown")
    version = bundle.metadata.get("registry", {}).get("version", "?")
    return f"{bundle.task} v{version} reads {'; '.join(parts)}"


class SnapshotRead(NamedTuple):
    """The snapshot :func:`snapshot_for` returns, where it came from, and with what.

    Parameters
    ----------
    frame : polars.DataFrame
        The snapshot.
    source : str
        Where it came from (for the console), with where it was kept.
    customers : bool
        Whether it was built with a customers file (a stored one: its
        :attr:`features.store.SnapshotInfo.customers`, or True when it records no source; a
        build: the customers given).
    """

    frame: pl.DataFrame
    source: str
    customers: bool


def snapshot_for(
    store: Store,
    sources: connectors.Inputs | connectors.SparkEvents | None,
    as_of: date,
    now: datetime,
    loaded: tuple[Loaded | Staged, pl.DataFrame | None] | None = None,
    master: str = DEFAULT_MASTER,
    keep: bool = False,
    categories: Sequence[str] | None = None,
    described: tuple[SourceFile | None, SourceFile | None] | None = None,
    writes_values: bool = False,
    check: EventsCheck | None = None,
) -> SnapshotRead:
    """Return the snapshot for ``as_of``: the stored one if built from ``sources``, else a build.

    The store's snapshot of the day is read when it is current (:func:`stored_snapshot`) and
    was built from the inputs given, as they are now, with the ``categories`` (:func:`same_inputs`);
    a database or a Spark table named as its source cannot be told unchanged, so it is read
    too, and the source line names the given inputs that were not read and how to rebuild.
    Otherwise the inputs are validated and built (nothing is written when they have errors),
    and with ``keep`` the build replaces the stored snapshot, said so (with the day's stored
    value table and plan, which were made from the one replaced).
    A build from files or a database goes as ``guanxi features build``'s
    (:func:`pipelines.snapshot.validated_events`, :func:`pipelines.snapshot.build_validated`):
    events above ``GUANXI_FEATURES_IN_MEMORY_EVENTS`` are validated into staged files and built a
    range of ``customer_id`` at a time, never held whole (a database's too: its table or query
    is counted by the database, and one whose count fails or is slow is staged); fewer are
    validated and built in memory.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    sources : pipelines.connectors.Inputs, pipelines.connectors.SparkEvents or None
        Events and customers to build from unless the store's current snapshot of the day was
        built from them; a Spark table's are built on Spark
        (:func:`pipelines.spark.snapshot_from_table`). None: the store's snapshot only
        (:func:`require_stored_snapshot`).
    as_of : datetime.date
        Snapshot day.
    now : datetime.datetime
        Current time, for validating the files.
    loaded : tuple of (Loaded or Staged, polars.DataFrame or None), optional
        The events (:class:`features.events.Loaded` in memory or :class:`features.events.Staged`
        on disk or staged, as :func:`pipelines.snapshot.validated_events` gives
        them) and customers, already validated and accepted: a build uses them instead of
        reading the sources again.
    master : str
        Spark master URL, for a Spark table.
    keep : bool
        Keep a snapshot it builds in the store, as ``guanxi features build`` does (atomically,
        with the history of the events it was built from; a Spark table's without one, the day's
        previous history removed), so that the next command of the day reads it instead of
        building it again.
    categories : sequence of str, optional
        The product categories the models read (:func:`models.scoring.model_categories`): a
        build gives them ``cat_{category}_*`` columns besides the events' own
        (:func:`pipelines.snapshot.build_validated`; a Spark build's are completed,
        :func:`features.snapshot.complete_categories`), so a category no order of the events
        has is 0 orders and a 0 share for every customer, not unknown; a stored snapshot
        without one of them is built again.
    described : tuple of (SourceFile or None, SourceFile or None), optional
        The events and customers as described before ``loaded`` was validated
        (:func:`pipelines.snapshot.describe_sources`), recorded with a snapshot kept; else
        described before this call validates them.
    writes_values : bool, default False
        Whether the caller writes the day's value table (``guanxi value``): a build replacing
        the stored snapshot then names the day's stored plan alone as made from the one
        replaced, not the value table this run replaces too.
    check : callable, optional
        Called with the validated events and their source's label before a build from files or
        a database (:data:`EventsCheck`): what it raises leaves the store as it was. The store's
        snapshot read instead, built from these files, is checked by the last event's day of the
        files, after ``--as-of`` too, as a build checks them
        (:func:`features.freshness.file_last_day`). A database's rows are not read then, and
        events a Spark table holds are not checked (where they end would take a Spark query).

    Returns
    -------
    SnapshotRead
        The snapshot, where it came from (for the console) with where it was kept, and whether
        it was built with a customers file.

    Raises
    ------
    features.events.EventsValidationError
        If the snapshot has to be built and the inputs have errors.
    Exception
        What ``check`` raises (:class:`features.freshness.StaleEventsError`), before the build.
    features.store.SnapshotNotFoundError
        If ``sources`` is None and the store has no current snapshot for the day.
    NoCustomerError
        If the snapshot built in this process holds no customer (nothing is kept).
    """
    if sources is None:
        stored = require_stored_snapshot(store, as_of)
        return SnapshotRead(
            store.read_snapshot(as_of),
            f"store ({stored.path}; no --events given)",
            _with_customers(stored),
        )
    info = stored_snapshot(store, as_of)
    compared = [] if info is None else _compared(info, sources, categories)
    same = None if info is None else _same(compared)
    label = sources.label if isinstance(sources, connectors.SparkEvents) else sources.events.label
    if info is not None and same is not False:
        if check is not None and not isinstance(sources, connectors.SparkEvents):
            _check_given(sources, check, label)
        # given customers are the stored ones; left out, the stored ones are read
        stored_customers = _with_customers(info)
        if same is None:  # a database or a Spark table: its rows may have changed since
            unread = " and ".join(name for name, found in compared if found is None)
            return SnapshotRead(
                store.read_snapshot(as_of),
                f"store ({info.path}); {unread} was not read (a database or a Spark table "
                f"cannot be told unchanged since the snapshot was built, {info.created}): to "
                f"score it as it is now, rebuild the snapshot with `guanxi features build "
                f"--as-of {as_of}` and the same input options",
                stored_customers,
            )
        return SnapshotRead(store.read_snapshot(as_of), f"store ({info.path})", stored_customers)
    with_customers = sources.customers is not None
    if isinstance(sources, connectors.SparkEvents):
        from pipelines.spark import snapshot_from_table

        events_file, customers_file = described or describe_sources(sources)
        replacing = _replacing(store, info, keep, writes_values)  # read before the build
        snapshot, warnings = snapshot_from_table(sources, as_of, now, master)
        for warning in warnings:
            logger.warning("%s", warning)
        if categories is not None:  # built with the events' own: the others had no order
            snapshot = complete_categories(snapshot, categories)
        kept = _keep(store, snapshot, as_of, keep, events_file, customers_file, None)
        return SnapshotRead(
            snapshot, f"built on Spark from {label}{replacing}{kept}", with_customers
        )
    # as `guanxi features build` does: many events are staged and built a range at a time
    status = Console(stderr=True)
    replacing = _replacing(store, info, keep, writes_values)  # read before the build
    with ExitStack() as stack:
        if loaded is None:
            described = described or describe_sources(sources)  # before: a file rewritten meanwhile
            events, customers, problems = stack.enter_context(
                validated_events(sources, now, status)
            )
            people = customers.frame if customers is not None else None
            loaded = connectors.accepted(events, problems), people
        events_file, customers_file = described or describe_sources(sources)
        if check is not None:  # before the build: a refusal keeps the store's snapshot
            check(loaded[0], label)
        spill = stack.enter_context(tempfile.TemporaryDirectory(prefix="guanxi-ranges-"))
        snapshot, history = build_validated(*loaded, as_of, Path(spill), status, categories)
        if snapshot.height == 0:  # an --as-of before the data, refused as features build does
            raise NoCustomerError(no_event_by(loaded[0].frame, as_of))
        kept = _keep(store, snapshot, as_of, keep, events_file, customers_file, history)
        unseen = _without_events(loaded[1], snapshot, as_of)
    return SnapshotRead(snapshot, f"built from {label}{replacing}{kept}{unseen}", with_customers)


def _check_given(sources: connectors.Inputs, check: EventsCheck, label: str) -> None:
    """Check the events files given as a build of them checks them, for the store's snapshot.

    The stored snapshot of the day read instead of a build, built from these very files, is
    taken by where the files' events end, after ``--as-of`` too
    (:func:`features.freshness.file_last_day`: a Parquet file's footers), as
    :func:`pipelines.snapshot.build_command` takes them: the history stored with the snapshot
    ends at the day, so events with a gap before ``--as-of`` and going on after it were refused
    with advice that could not be followed. A database's rows are not read (the snapshot read
    says how to rebuild it from them as they are).
    """
    events = sources.events
    if events.is_database:
        return
    through = file_last_day(Path(events.location), events.mapping.columns.get("ts", "ts"))
    if through is not None:
        check(through, label)


def _with_customers(info: SnapshotInfo) -> bool:
    """Whether a stored snapshot counts as built with a customers file (``SnapshotRead``'s).

    One that records no source at all (stored by ``guanxi drift``, or before sources were
    recorded) may have been built with one: it counts as built with one, so only a customers-file
    input null for every customer is named (:func:`missing_inputs`), not every one. So does one
    whose customers file is recorded with a field this code does not know
    (:attr:`features.store.SnapshotInfo.unreadable`): it was built with one.
    """
    return info.customers is not None or "customers" in info.unreadable or info.events is None


def _without_events(customers: pl.DataFrame | None, snapshot: pl.DataFrame, as_of: date) -> str:
    """Count the customers of the customers file the snapshot has no row of, for the console.

    A customer without an event up to the day is in no snapshot, so in no score table.
    """
    if customers is None:
        return ""
    ids = snapshot.select("customer_id")
    absent = customers.select("customer_id").join(ids, on="customer_id", how="anti").height
    if absent == 0:
        return ""
    has = "has" if absent == 1 else "have"
    return (
        f"; {counted(absent, 'customers')} of the customers file {has} no event up to {as_of}, "
        "so no row"
    )


def same_inputs(
    info: SnapshotInfo,
    sources: connectors.Inputs | connectors.SparkEvents,
    categories: Sequence[str] | None = None,
) -> bool | None:
    """Whether a stored snapshot was built from the given inputs, as they are now.

    A file (or a directory of files) is the same when its path, size and modification time are
    those the snapshot recorded (:meth:`features.store.SourceFile.of`), and so is the digest
    of the column mapping it is read with (:meth:`features.sources.TableMapping.digest`; a
    snapshot stored before that was recorded counts as built without one). A database table,
    or a query of the same text, or a Spark table, named as the snapshot's was and read with
    the same mapping, cannot be told unchanged. Customers left out are not compared: the
    stored snapshot keeps those it was built with. A snapshot without a column of one of the
    ``categories`` is not the same (a build with them gives it theirs).

    Parameters
    ----------
    info : features.store.SnapshotInfo
        The stored snapshot's metadata.
    sources : pipelines.connectors.Inputs or pipelines.connectors.SparkEvents
        The events (and customers) given now.
    categories : sequence of str, optional
        The categories the models read (:func:`models.scoring.model_categories`).

    Returns
    -------
    bool or None
        True when every input given is a file the snapshot was built from, unchanged; False
        when one is another source, or a file changed since or missing, or read with another
        mapping, or customers the snapshot was built without, or the snapshot lacks one of
        ``categories``; None when none is, but a database or a Spark table is among them.
    """
    return _same(_compared(info, sources, categories))


def _same(compared: list[tuple[str, bool | None]]) -> bool | None:
    """Fold :func:`_compared`: False if one differs, else None if one cannot be told, else True."""
    found = [same for _, same in compared]
    if False in found:
        return False
    return None if None in found else True


def _compared(
    info: SnapshotInfo,
    sources: connectors.Inputs | connectors.SparkEvents,
    categories: Sequence[str] | None,
) -> list[tuple[str, bool | None]]:
    """Compare each input given (and the categories) with what a stored snapshot recorded.

    Returns the inputs' labels, each with True (the same), False (not) or None (a database or a
    Spark table named alike, which cannot be told unchanged).
    """
    events = sources if isinstance(sources, connectors.SparkEvents) else sources.events
    compared = [(events.label, _same_source(events, info.events))]
    if sources.customers is not None:
        compared.append((sources.customers.label, _same_source(sources.customers, info.customers)))
    if categories:
        have = snapshot_categories(pl.DataFrame(schema=pl.read_parquet_schema(info.path)))
        if set(category_slugs(categories)) - set(have):
            compared.append(("the models' categories", False))
    return compared


def _same_source(source: Source | connectors.SparkEvents, stored: SourceFile | None) -> bool | None:
    """Whether a source is the one a snapshot recorded (None: a database or table named alike)."""
    try:
        now = source.describe()
    except OSError:  # missing: validation says so
        return False
    if stored is None:
        return False
    if isinstance(source, connectors.SparkEvents) or source.is_database:
        return None if (stored.path, stored.mapping) == (now.path, now.mapping) else False
    return now == stored


def _replacing(store: Store, info: SnapshotInfo | None, keep: bool, writes_values: bool) -> str:
    """Say which stored snapshot of the day a build replaces, or leaves with ``--no-store``.

    The day's stored value table (unless ``writes_values``: the run replaces it too) and plan, if
    any, were made from the one replaced: said so. Their metadata is read before the build, and
    one that cannot be read is left unsaid: the run goes on.
    """
    if info is None:
        return ""
    named = [f.path for f in (info.events, info.customers) if f is not None]
    built = " and ".join(named) if named else "inputs it does not name"
    if not keep:
        return (
            f" (the store's snapshot of that day, built from {built}, is left as it is: --no-store)"
        )
    made = [
        what
        for what, found in (
            ("value table", None if writes_values else store.value_info),
            ("plan", store.plan_info),
        )
        if found is not None and _found(found, info.as_of)
    ]
    stale = (
        f" (the day's stored {' and '.join(made)} {'were' if len(made) > 1 else 'was'} made "
        "from the one replaced)"
        if made
        else ""
    )
    return f", replacing the store's snapshot of that day built from {built}{stale}"


def _found(info: Callable[[date], object | None], as_of: date) -> bool:
    """Whether the store holds a day's table (``info``: a ``Store.*_info``); False if unreadable."""
    try:
        return info(as_of) is not None
    except Exception:  # a damaged file is no reason to fail the run: it is only not named
        logger.warning("could not read the metadata of the day's stored table", exc_info=True)
        return False


def _keep(
    store: Store,
    snapshot: pl.DataFrame,
    as_of: date,
    keep: bool,
    events: SourceFile | None,
    customers: SourceFile | None,
    history: pl.DataFrame | pl.LazyFrame | CustomerRanges | None,
) -> str:
    """Keep a built snapshot in the store when asked (and not empty); say where, for the console.

    Without ``history`` (a Spark build) the day's stored history, the replaced snapshot's
    events, is removed once the snapshot is written (:meth:`features.store.Store.drop_history`).
    """
    if not keep or snapshot.height == 0:
        return ""
    info = store.write_snapshot(
        snapshot,
        as_of,
        events=events,
        customers=customers,
        history=history,
        drop_history=history is None,
    )
    return f", kept in the store ({info.path})"


def stored_snapshot(store: Store, as_of: date) -> SnapshotInfo | None:
    """Return the store's current snapshot of a day (:func:`snapshot_for` reads it), if any.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    as_of : datetime.date
        Snapshot day.

    Returns
    -------
    features.store.SnapshotInfo or None
        The metadata of the snapshot of ``as_of`` when the store has one written by this
        feature set (``features.contracts.FEATURE_SET_VERSION``), else None.
    """
    try:
        info = store.snapshot_info(as_of)
    except SnapshotNotFoundError:
        return None
    return info if info.feature_set_version == FEATURE_SET_VERSION else None


def require_stored_snapshot(store: Store, as_of: date) -> SnapshotInfo:
    """Return the store's current snapshot of a day, for a command given no events to build it.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    as_of : datetime.date
        Snapshot day.

    Returns
    -------
    features.store.SnapshotInfo
        As :func:`stored_snapshot`.

    Raises
    ------
    features.store.SnapshotNotFoundError
        When the store has none of this feature set for the day; the message names the day, the
        store's snapshot folder, the days it holds (or the other feature-set version of the day's
        snapshot) and the two ways out: ``guanxi features build`` first, or ``--events``.
    """
    info = stored_snapshot(store, as_of)
    if info is not None:
        return info
    try:
        other = store.snapshot_info(as_of)
    except SnapshotNotFoundError:
        days = ", ".join(day.isoformat() for day in store.list_snapshots()) or "none"
        found = f"no snapshot as of {as_of} in {store.snapshot_dir} (stored: {days})"
    else:
        found = (
            f"the snapshot as of {as_of} in {store.snapshot_dir} is of feature set version "
            f"{other.feature_set_version}, not {FEATURE_SET_VERSION}"
        )
    raise SnapshotNotFoundError(
        f"{found}; build it first with `guanxi features build --as-of {as_of} --events <file>`, "
        "or give --events to build it here"
    )


def store_scores(
    store: Store,
    bundle: ModelBundle,
    snapshot: pl.DataFrame,
    as_of: date,
    scored: pl.DataFrame,
    explain_k: int,
) -> ScoreTableInfo:
    """Keep one task's scored rows in the store, keyed by task, snapshot day and model version.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    bundle : ModelBundle
        The registry model that scored the rows (``metadata["registry"]`` names it).
    snapshot : polars.DataFrame
        The snapshot that was scored (its digest is recorded).
    as_of : datetime.date
        The snapshot day.
    scored : polars.DataFrame
        :func:`models.scoring.score_snapshot` of ``bundle`` on ``snapshot``.
    explain_k : int
        The ``explain_k`` it was scored with.

    Returns
    -------
    features.store.ScoreTableInfo
        What was written; or, when the store already holds a table of the same model and
        snapshot with more reasons per row (one the server wrote for lookups), that table,
        which is kept: a thinner table would only make the server explain everything again.

    Raises
    ------
    ValueError
        If the bundle does not name its registry version.
    """
    digest = _recorded(snapshot_digest(snapshot), bundle, snapshot)
    if (thicker := _thicker(store, bundle, as_of, digest, explain_k)) is not None:
        return thicker
    with _writing(store, bundle, as_of, digest, explain_k, scored.schema) as table:
        table.write(scored)
    assert table.info is not None
    return table.info


def _recorded(digest: str, bundle: ModelBundle, snapshot: pl.DataFrame) -> str:
    """Return the digest a task's table records (:func:`features.store.scores_digest`)."""
    return scores_digest(digest, completed_categories(snapshot, bundle.feature_names))


def _registry_version(bundle: ModelBundle) -> str:
    """Return the registry version a bundle names (a ValueError when it names none)."""
    version = bundle.metadata.get("registry", {}).get("version")
    if version is None:
        raise ValueError(f"the {bundle.task} model names no registry version; cannot store it")
    return str(version)


def _thicker(
    store: Store, bundle: ModelBundle, as_of: date, digest: str, explain_k: int
) -> ScoreTableInfo | None:
    """Return the store's table of the same model and snapshot if it has more reasons a row."""
    existing = store.score_info(bundle.task, as_of, _registry_version(bundle))
    kept_k = min(explain_k, len(bundle.feature_names))
    if existing is not None and existing.snapshot_digest == digest and existing.explain_k > kept_k:
        return existing
    return None


def _writing(
    store: Store,
    bundle: ModelBundle,
    as_of: date,
    digest: str,
    explain_k: int,
    schema: pl.Schema,
) -> AbstractContextManager[ScoreTableWriter]:
    """Store a task's table a part at a time (:meth:`features.store.Store.writing_scores`)."""
    return store.writing_scores(
        bundle.task,
        as_of,
        _registry_version(bundle),
        schema,
        model_name=str(bundle.metadata["registry"].get("name", bundle.task)),
        feature_set_version=bundle.feature_set_version,
        explain_k=min(explain_k, len(bundle.feature_names)),
        snapshot_digest=digest,
    )


def require_tracking(console: Console, home: Path, doing: str) -> None:
    """Point MLflow at the store or the server and probe it; exit 2 with a message if it is down.

    Parameters
    ----------
    console : rich.console.Console
        Where the message goes.
    home : pathlib.Path
        ``GUANXI_HOME``.
    doing : str
        What the command cannot do without it (``"score"``), for the message.

    Raises
    ------
    typer.Exit
        With code 2 when the tracking server does not answer.
    """
    try:
        check_tracking(configure_tracking(home))
    except TrackingUnavailableError as exc:
        console.print(f"[red]cannot {doing}:[/red] {exc}")
        raise typer.Exit(2) from exc


def check_task(task: str | None) -> str | None:
    """Read a ``--task`` value: one registered task name (None when the option is left out).

    Parameters
    ----------
    task : str or None
        E.g. ``"churn"``.

    Returns
    -------
    str or None
        ``task``.

    Raises
    ------
    typer.BadParameter
        If it is not a registered task.
    """
    if task is not None and task not in task_names():
        # a misspelt task was refused with the whole list alone to search: the nearest is named
        said = quoted_near(task, task_names())
        raise typer.BadParameter(
            f"unknown task {said}; choose from {', '.join(task_names())}", param_hint="--task"
        )
    return task


def _others(tasks: list[str], alias: str) -> str | None:
    """Name the tasks without ``alias`` and how to score the others alone, when some have it.

    A new user who trained and promoted one task scores with every task by default, and the
    first task without a champion would be the only one named.
    """
    missing = [task for task in tasks if registry.get_version(task, alias) is None]
    have = [task for task in tasks if task not in missing]
    if not missing or not have:
        return None
    return (
        f"{counted(len(missing), 'tasks')} without @{alias}: {', '.join(missing)}; "
        f"score the others alone with --tasks {','.join(have)}"
    )


def parse_tasks(text: str) -> list[str]:
    """Read a ``--tasks`` value: comma-separated registered task names.

    Parameters
    ----------
    text : str
        E.g. ``"churn,referral"``.

    Returns
    -------
    list of str
        The tasks, in the order given.

    Raises
    ------
    typer.BadParameter
        If a name is not a registered task, or none is given.
    """
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in task_names()]
    if unknown or not tasks:
        said = ", ".join(quoted_near(t, task_names()) for t in unknown)  # each with its nearest
        given = f"{counted(len(unknown), 'unknown tasks')} {said}" if unknown else "no task given"
        raise typer.BadParameter(
            f"{given}; choose from {', '.join(task_names())}",
            param_hint="--tasks",
        )
    return tasks


_Events = Annotated[
    str | None,
    typer.Option(
        "--events",
        help="Events to build the day's snapshot from: a .csv or .parquet file, a directory "
        "of them, or a database URI with --events-table or --events-query (with --engine "
        "spark, leave it out and name a Spark table with --events-table). The store's snapshot "
        "of the day is read instead when it was built from the same files, unchanged (or from "
        "the same database or Spark table, said so); other files replace it (unless "
        "--no-store). Leave every input option out to score the store's snapshot.",
    ),
]
"""``--events`` of ``guanxi score``: read unless the store's snapshot of the day was built of it."""


def score_command(
    as_of: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Snapshot day (UTC).")],
    out: connectors.Out,
    events: _Events = None,
    customers: connectors.Customers = None,
    tasks: Annotated[
        str, typer.Option(help="Comma-separated tasks (default: every task).")
    ] = ",".join(task_names()),
    alias: Annotated[str, typer.Option(help="Registry alias to score with.")] = registry.CHAMPION,
    explain: Annotated[
        int, typer.Option(min=0, help="Top-K reasons per row (wide reason_{i}_* columns).")
    ] = 0,
    keep: Annotated[
        bool,
        typer.Option(
            "--store/--no-store", help="Also keep each task's table in the store for serving."
        ),
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
    """Score every customer for each task with the aliased models; write a file or a table.

    The day's snapshot comes from the store (guanxi features build, guanxi demo) when it was
    built from the --events given (or none is given), else is built from --events.
    """
    from serving.settings import get_settings

    console = Console()
    # before any work: a day to come was built, kept, and its scores read by the server and
    # guanxi drift as the latest
    future = after_today(as_of.date())
    if future is not None:
        console.print(f"[red]cannot score, nothing written:[/red] {future}")
        raise typer.Exit(1)
    chosen = parse_tasks(tasks)
    given = (events, events_table, events_query, customers, customers_table, customers_query)
    # no input option at all: the store's snapshot of the day, checked before any work
    sources = (
        connectors.inputs_or_table(*given, mapping, engine)
        if any(option is not None for option in (*given, mapping))
        else None
    )
    connectors.check_output(out, out_table)
    settings = get_settings()
    home = settings.home
    day = as_of.date()
    store = settings.store()  # signs the score tables with GUANXI_STORE_KEY when it is set
    if sources is None:
        try:
            require_stored_snapshot(store, day)
        except SnapshotNotFoundError as exc:
            console.print(f"[red]cannot score, nothing written:[/red] {exc}")
            raise typer.Exit(1) from exc
    require_tracking(console, home, "score")
    if keep:
        warn_unsigned(
            console,
            "each task's score table",
            "computes those scores again instead of reading them",
            skip="--no-store",
        )
    try:
        bundles = load_models(chosen, alias)
    except (registry.ModelNotFoundError, ValueError) as exc:
        console.print(f"[red]cannot score:[/red] {exc}")
        if isinstance(exc, registry.ModelNotFoundError) and (hint := _others(chosen, alias)):
            console.print(hint)
        raise typer.Exit(1) from exc
    categories = model_categories(bundles.values())

    def fresh(events: Loaded | Staged | StagedOrders | date, label: str) -> None:
        warning = refuse_stale_events(
            events, day, label, then=", and so would its scores", also=", and so do its scores"
        )
        if warning is not None:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}")

    try:
        read = snapshot_for(
            store,
            sources,
            day,
            datetime.now(UTC),
            master=spark_master,
            keep=keep,
            categories=categories,
            check=fresh,
        )
    except (EventsValidationError, SnapshotNotFoundError) as exc:
        console.print(f"[red]cannot score, nothing written:[/red] {exc}")
        raise typer.Exit(1) from exc
    except StaleEventsError as exc:  # was built, kept and scored (qa43 H1)
        console.print(f"[red]cannot score, nothing written:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except NoCustomerError as exc:  # was a file of its header alone, and success
        console.print(f"[red]cannot score, nothing written:[/red] {exc}: choose a later --as-of")
        raise typer.Exit(1) from exc
    snapshot, source = read.frame, read.source
    if snapshot.height == 0:  # built on Spark: no customer either
        said = f"no customer has an event on or before {day}: choose a later --as-of"
        console.print(f"[red]cannot score, nothing written:[/red] {said}")
        raise typer.Exit(1)
    console.print(f"snapshot as of {day}: {snapshot.height:,} customers, {source}")
    for bundle in bundles.values():  # was silent: the model read them as missing
        if missing := missing_inputs(bundle, snapshot, read.customers):
            console.print(f"[yellow]note:[/yellow] {missing_note(bundle, missing, read.customers)}")
    # a stored snapshot read alone lacks the categories none of its orders has: model_frame
    # completes them (0 orders) for every reader, the server's too
    schema, tables, parts = task_parts(bundles, snapshot, explain, engine, spark_master)
    digest = snapshot_digest(snapshot) if keep else ""

    def rows() -> Iterator[pl.DataFrame]:
        for task, bundle in bundles.items():
            # each part is stored as it is written out: a task's table is never gathered (at
            # 1M customers cross-sell's 7.5M rows held until stored took 4.5 GB)
            recorded = _recorded(digest, bundle, snapshot)
            kept = _thicker(store, bundle, day, recorded, explain) if keep else None
            with ExitStack() as stack:
                table = (
                    stack.enter_context(
                        _writing(store, bundle, day, recorded, explain, tables[task])
                    )
                    if keep and kept is None
                    else None
                )
                count = 0
                for part in parts[task]:
                    count += part.height
                    if table is not None:
                        table.write(part)
                    yield part.with_columns(as_of=pl.lit(day))
            console.print(
                f"{task}: {count:,} rows with {task}@{alias} "
                f"(version {bundle.metadata['registry']['version']})"
            )
            if table is not None:
                kept = table.info
            if kept is not None:
                console.print(
                    f"{task}: kept in the store ({kept.path}, "
                    f"{counted(kept.explain_k, 'reasons')} a row)"
                )

    try:
        where, written = connectors.write_parts(rows(), schema, out, out_table)
    except DatabaseError as exc:
        console.print(f"[red]cannot write the scores:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"wrote {written:,} rows to {where}")


def task_parts(
    bundles: dict[str, ModelBundle],
    snapshot: pl.DataFrame,
    explain_k: int,
    engine: str = "polars",
    spark_master: str = DEFAULT_MASTER,
    batch_customers: int = BATCH_CUSTOMERS,
) -> tuple[pl.Schema, dict[str, pl.Schema], dict[str, Iterable[pl.DataFrame]]]:
    """Give ``guanxi score``'s columns, each task's, and each task's rows, a part at a time.

    Parameters
    ----------
    bundles : dict of str to ModelBundle
        The models by task, in the order their rows are written.
    snapshot : polars.DataFrame
        The snapshot to score.
    explain_k : int
        Reasons per row (``--explain``).
    engine : str
        ``"polars"``: each task's rows are made a batch of ``batch_customers`` customers at a
        time as they are asked for (:func:`models.scoring.score_batches`), after a first pass
        over every task (:func:`models.scoring.batch_scores`: the deciles, and which tasks have
        scored rows, so reason columns). ``"spark"``: each task's whole table, all made here
        (:func:`pipelines.spark.scores_with_spark`).
    spark_master : str
        Spark master URL, for ``"spark"``.
    batch_customers : int
        Customers a part, for ``"polars"``.

    Returns
    -------
    tuple of (polars.Schema, dict, dict)
        The output's columns (:data:`~models.scoring.SCORE_COLUMNS`, ``as_of``, then the other
        columns in the order they first appear among the tasks, as the tasks' tables put one
        under the other with ``how="diagonal_relaxed"`` have them), each task's own columns by
        task (:func:`models.scoring.score_schema`, those of its
        :func:`models.scoring.score_snapshot` table) and each task's parts by task, an iterable
        of polars.DataFrame (without ``as_of``;
        concatenated, :func:`models.scoring.score_snapshot`).
    """
    parts: dict[str, Iterable[pl.DataFrame]]
    if engine == "spark":
        from pipelines.spark import scores_with_spark

        tables = {
            t: scores_with_spark(b, snapshot, explain_k, spark_master) for t, b in bundles.items()
        }
        parts = {t: [table] for t, table in tables.items()}
        scored = {t: bool((table["status"] == ELIGIBLE).any()) for t, table in tables.items()}
    else:
        first = {t: batch_scores(b, snapshot, batch_customers) for t, b in bundles.items()}
        parts = {
            t: score_batches(
                b, snapshot, explain_k, batch_customers=batch_customers, scores=first[t]
            )
            for t, b in bundles.items()
        }
        scored = {t: first[t].rows > 0 for t in bundles}
    own = {t: score_schema(b, explain_k, scored[t]) for t, b in bundles.items()}
    columns: dict[str, pl.DataType] = {}
    for task_columns in own.values():
        for name, dtype in task_columns.items():
            columns.setdefault(name, dtype)
    rest = {name: dtype for name, dtype in columns.items() if name not in SCORE_COLUMNS}
    schema = pl.Schema({**{c: columns[c] for c in SCORE_COLUMNS}, "as_of": pl.Date(), **rest})
    return schema, own, parts
