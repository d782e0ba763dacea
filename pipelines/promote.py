"""``guanxi promote`` (the gated move of ``champion``) and ``guanxi models`` (the registry listing).

The gate
--------
A challenger becomes champion only when

1. its grade (version tag ``grade``, see :func:`training.evaluation.grade`) is in
   :data:`PASSING_GRADES`, and
2. it beats the current champion on the challenger's own held-out rows (the run artifact
   :data:`models.registry.HOLDOUT_ARTIFACT`) on the task's own gate metrics
   (:attr:`models.tasks.TaskSpec.gate`): the first higher and the second no lower, i.e. ROC-AUC
   and PR-AUC for a binary task, precision@3 and NDCG@3 per customer for cross-sell.
   The champion is scored on those rows with its own bundle (:func:`champion_rows`: inputs it
   needs but the rows lack count as missing, but for a category they have no column of, 0
   orders and a 0 share, as :func:`models.tasks.model_frame` serves it). When there is no
   champion yet, the champion was trained on another feature-set version (it could not be
   served any more), or its files are gone (:class:`pipelines.versions.ModelFilesMissingError`:
   it can be neither compared against nor served; said), the grade alone decides.

The promotion itself is one registry call (:func:`models.registry.set_champion`, after removing a
rollback record the version kept, so it is not called a rollback), so it is atomic.

The rule when the model fails
-----------------------------
A task with a rule-backed version (cross-sell: the category-affinity rule, registered by ``guanxi
train`` under the alias ``rule`` when its model's grade does not pass, see
:func:`models.registry.register_rule`) is not left without a champion: when the challenger is not
promoted and the task has no champion, or its champion is rule-backed, ``champion`` moves to the
newest rule-backed version (one registry call again) and the decision says so ("...; serving the
affinity rule, version N"). The challenger still goes through the gate unchanged, against a rule
champion as against any other, so a model that passes it later replaces the rule.

Rollback
--------
``guanxi promote --task T --version N`` makes version N champion without the gate (an operator's
explicit choice, :func:`make_champion`), once it loads as a champion is served; it says the
previous champion's version and the command that goes back to it. It records on the version who
(``--by``, default the OS user), why (``--reason``), when and from which version
(:func:`models.registry.record_rollback`: the record first, then the alias, the record undone if
the move fails).
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Final

import numpy as np
import pandas as pd
import polars as pl
import typer
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from features.contracts import MISSING
from features.snapshot import completion_columns
from models import registry
from models.artifact import RULE_BACKED, ModelBundle
from models.registry import (
    TrackingUnavailableError,
    check_tracking,
    configure_tracking,
    load_holdout,
)
from models.tasks import completed_categories, get_task, task_names
from pipelines.console import quiet_libraries
from pipelines.score import check_task
from pipelines.versions import ModelFilesMissingError, load_version

__all__ = [
    "KEY_METRICS",
    "PASSING_GRADES",
    "Decision",
    "decide",
    "decision_text",
    "make_champion",
    "models_command",
    "promote",
    "promote_command",
    "serve_rule",
    "shown_aliases",
]

PASSING_GRADES: Final = ("A", "B")
KEY_METRICS: Final[dict[str, str]] = {
    "xgboost_roc_auc": registry.metric_title("roc_auc"),
    "xgboost_pr_auc": registry.metric_title("pr_auc"),
    "rule_roc_auc": f"rule\n{registry.metric_title('roc_auc')}",
}
"""Version tags shown by ``guanxi models`` (held-out metrics copied onto each version), with
their column headings (:func:`models.registry.metric_title`; the rule's on two lines, so the
listing fits 80 columns as it did with the shorter ``AUC``)."""


@dataclass(frozen=True)
class Decision:
    """The outcome of the promotion gate.

    Parameters
    ----------
    promote : bool
        Whether the challenger becomes champion.
    reason : str
        Why, in one sentence.
    already : bool
        The challenger is the champion already (nothing to do, not a failure).
    rule_version : str, optional
        When the challenger is not promoted: the rule-backed version that is champion after the
        call (see the module docstring); None when no rule is served.
    rule_moved : bool
        Whether this call moved ``champion`` to ``rule_version``.
    """

    promote: bool
    reason: str
    already: bool = False
    rule_version: str | None = None
    rule_moved: bool = False


def decide(
    grade: str,
    challenger: dict[str, float] | None = None,
    champion: dict[str, float] | None = None,
    gate: tuple[str, str] = ("roc_auc", "pr_auc"),
) -> Decision:
    """Apply the promotion gate (pure).

    Parameters
    ----------
    grade : str
        The challenger's grade.
    challenger, champion : dict, optional
        The ``gate`` metrics of both models on the same held-out rows; ``champion`` None when
        there is no comparable champion.
    gate : tuple of (str, str), default ("roc_auc", "pr_auc")
        The task's gate metrics: the first must be higher, the second no lower.

    Returns
    -------
    Decision
        The decision and its reason.
    """
    if grade not in PASSING_GRADES:
        return Decision(
            False,
            f"challenger grade {grade!r} does not pass (needs one of {', '.join(PASSING_GRADES)})",
        )
    if champion is None or challenger is None:
        return Decision(True, f"grade {grade} passes and there is no comparable champion")
    first, second = gate
    auc, auc0 = challenger[first], champion[first]
    pr, pr0 = challenger[second], champion[second]
    figures = (
        f"{registry.metric_title(first)} {auc:.4f} vs champion {auc0:.4f}, "
        f"{registry.metric_title(second)} {pr:.4f} vs champion {pr0:.4f} "
        "on the challenger's held-out rows"
    )
    if not (np.isfinite(auc) and np.isfinite(auc0)):
        return Decision(False, f"held-out rows hold one class only, cannot compare ({figures})")
    if auc > auc0 and pr >= pr0:
        return Decision(
            True, f"grade {grade} passes and the challenger beats the champion: {figures}"
        )
    return Decision(False, f"the challenger does not beat the champion: {figures}")


def promote(task: str, console: Console) -> Decision:
    """Run the gate for one task and move ``champion`` when it passes.

    Parameters
    ----------
    task : str
        Registered model name.
    console : rich.console.Console
        Where progress goes.

    Returns
    -------
    Decision
        What was decided (the alias has moved when ``promote`` is true).

    Raises
    ------
    models.registry.ModelNotFoundError
        If the task has no challenger.
    pipelines.versions.ModelFilesMissingError
        If the challenger's files are gone (a champion's files gone are said on ``console``, and
        the grade decides: it can be neither compared against nor served).
    """
    challenger = registry.get_version(task, registry.CHALLENGER)
    if challenger is None:
        raise registry.ModelNotFoundError(
            f"no {task}@{registry.CHALLENGER}: train one with `guanxi train --task {task} ...`"
        )
    version = str(challenger.version)
    champion = registry.get_version(task, registry.CHAMPION)
    if champion is not None and str(champion.version) == version:
        return Decision(False, f"version {version} is already the {task} champion", already=True)
    grade = (challenger.tags or {}).get("grade", "?")
    old = None
    if grade in PASSING_GRADES and champion is not None:
        old = _comparable(task, str(champion.version), console)
    if champion is None or old is None:
        decision = decide(grade)
    else:
        new = load_version(task, version=version).bundle
        if old.feature_set_version != new.feature_set_version:
            console.print(
                f"champion version {champion.version} uses feature set "
                f"{old.feature_set_version!r}, the challenger {new.feature_set_version!r}: "
                "not comparable, the grade decides"
            )
            decision = decide(grade)
        else:
            rows, y = load_holdout(str(challenger.run_id))
            rows = champion_rows(rows, old.feature_names)
            spec = get_task(task)
            index = pd.Index(rows["customer_id"], name="customer_id")
            decision = decide(
                grade,
                spec.evaluate(y, new.predict_proba(rows), None, index),
                spec.evaluate(y, old.predict_proba(rows), None, index),
                spec.gate,
            )
    if decision.promote:
        registry.set_champion(task, version)
        return decision
    return serve_rule(task, champion, decision)


def champion_rows(rows: pd.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
    """Give a challenger's held-out rows the inputs the champion reads, as it is served them.

    The rows were built before the challenger's training day with its categories, every one
    ordered up to then, so a category of the champion's they have no column of had no order by
    then: its ``cat_{category}_*`` inputs are 0 orders and a 0 share, null without spend
    (:func:`features.snapshot.completion_columns`, which :func:`models.tasks.model_frame` gives
    every reader), and without ``spend_total`` among the rows the share stays missing. Any other
    input the rows lack is missing (NaN).

    Parameters
    ----------
    rows : pandas.DataFrame
        The held-out rows (:func:`models.registry.load_holdout`).
    feature_names : sequence of str
        The champion's inputs.

    Returns
    -------
    pandas.DataFrame
        The rows with every input, the columns sorted.
    """
    present = pl.DataFrame(schema=dict.fromkeys(map(str, rows.columns), pl.Float64))
    lacking = completed_categories(present, feature_names, build=True)
    if lacking:
        spend = (
            pl.from_pandas(rows[["spend_total"]])
            if "spend_total" in rows.columns
            else pl.DataFrame(
                {"spend_total": [None] * len(rows)}, schema={"spend_total": pl.Float64}
            )
        )
        added = spend.select(completion_columns(lacking)).to_pandas()
        rows = rows.assign(**{c: added[c].to_numpy(dtype=float) for c in added.columns})
    return rows.reindex(columns=sorted({*rows.columns, *feature_names}))


def _comparable(task: str, champion: str, console: Console) -> ModelBundle | None:
    """Load champion version ``champion`` to compare with; None (said) if it cannot load.

    It cannot when its files are gone or its booster is not the one pinned at registration (the
    server refuses it too).
    """
    try:
        return load_version(task, version=champion).bundle
    except (ModelFilesMissingError, registry.ModelIntegrityError) as exc:
        # was MLflow's traceback, "records no booster digest", or the integrity refusal's traceback
        console.print(
            f"champion version {champion} cannot be compared against, nor served: "
            f"{escape(str(exc))}; the grade decides"
        )
        return None


def make_champion(task: str, version: str, by: str = "", reason: str = "") -> str | None:
    """Point ``champion`` at a chosen version (rollback): an operator's choice, no gate.

    The version must exist and load as the server loads a champion (never through pickle, its
    booster digest the one pinned at registration, built on this code's feature-set version:
    :func:`models.registry.load_model` with ``check``); the move is then one registry call, so it
    is atomic, after recording who, why, when and from which version on the version
    (:func:`models.registry.record_rollback`, which undoes the record when the move fails).

    Parameters
    ----------
    task : str
        Registered model name.
    version : str
        The version to make champion.
    by : str, default ""
        Who rolls back (empty: the OS user name).
    reason : str, default ""
        Why.

    Returns
    -------
    str or None
        The champion's version before the call (``version`` itself when it was champion
        already: nothing moved), None when the task had no champion.

    Raises
    ------
    models.registry.ModelNotFoundError
        If the task has no such version.
    pipelines.versions.ModelFilesMissingError
        If the version's files are gone.
    ValueError
        If it does not load: :class:`models.registry.ModelIntegrityError` (booster digest),
        :class:`models.scoring.FeatureSetMismatchError` (another feature-set version) or a
        malformed bundle.
    """
    champion = registry.get_version(task, registry.CHAMPION)
    previous = None if champion is None else str(champion.version)
    loaded = load_version(task, version=version, check=True)
    if previous != loaded.version:
        registry.record_rollback(task, loaded.version, by or getpass.getuser(), reason, previous)
    return previous


def serve_rule(task: str, champion: ModelVersion | None, decision: Decision) -> Decision:
    """Make the task's rule-backed version champion after a failed gate, when nothing better is.

    Parameters
    ----------
    task : str
        Registered model name.
    champion : mlflow.entities.model_registry.ModelVersion or None
        The champion before the gate ran.
    decision : Decision
        The gate's decision (not promoted).

    Returns
    -------
    Decision
        ``decision`` unchanged when the task has no rule-backed version (alias
        :data:`models.registry.RULE`) or a model is champion; otherwise with ``rule_version``
        set (``rule_moved`` when ``champion`` moved now) and the reason ending "serving the
        affinity rule, version N".
    """
    rule = registry.get_version(task, registry.RULE)
    if rule is None or not (champion is None or registry.is_rule_backed(champion)):
        return decision
    number = str(rule.version)
    moved = champion is None or str(champion.version) != number
    if moved:
        registry.set_champion(task, number)
    name = (rule.tags or {}).get("backing_name") or "rule"
    already = "" if moved else ", already the champion"
    return replace(
        decision,
        reason=f"{decision.reason}; serving the {name}, version {number}{already}",
        rule_version=number,
        rule_moved=moved,
    )


def decision_text(
    task: str, decision: Decision, *, markup: bool = False, named: bool = False
) -> str:
    """Say a promotion decision in one sentence, as ``guanxi promote`` prints it (pure).

    Parameters
    ----------
    task : str
        Registered model name.
    decision : Decision
        What the gate decided.
    markup : bool, default False
        Colour the head ("promoted", "not promoted") with Rich markup.
    named : bool, default False
        Start a sentence that does not name the task with ``<task>: `` (``guanxi cycle``'s
        promote step, which says the decision of each task it retrained).

    Returns
    -------
    str
        ``promoted churn@champion: <reason>``; the reason alone when the challenger is the
        champion already; otherwise ``not promoted: <reason>`` (``model not promoted`` when a
        rule-backed version is served instead).
    """

    def head(text: str, colour: str) -> str:
        return f"[{colour}]{text}[/{colour}]" if markup else text

    if decision.promote:
        return f"{head('promoted', 'green')} {task}@{registry.CHAMPION}: {decision.reason}"
    if decision.already:
        return decision.reason
    said = "model not promoted" if decision.rule_version is not None else "not promoted"
    text = f"{head(said, 'red')}: {decision.reason}"
    return f"{task}: {text}" if named else text


def _home_uri(console: Console) -> str:
    """Configure and check tracking; an unreachable server ends the command (exit code 2)."""
    from serving.settings import get_settings

    uri = configure_tracking(get_settings().home)
    try:
        check_tracking(uri)
    except TrackingUnavailableError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    return uri


def promote_command(
    task: Annotated[
        str, typer.Option(help=f"One of {', '.join(task_names())}.", callback=check_task)
    ],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            min=1,
            help="Make this version of the task the champion (rollback: no gate), once it loads "
            "and its integrity check passes; says the previous champion's version.",
        ),
    ] = None,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="With --version: why (recorded on the version, shown by `guanxi models` and "
            "the model page).",
        ),
    ] = "",
    by: Annotated[
        str,
        typer.Option(
            "--by", help="With --version: who rolls back (recorded; default: the OS user name)."
        ),
    ] = "",
) -> None:
    """Make the challenger the champion if it passes the gate (grade, then beats the champion).

    With --version N, make version N the champion instead (rollback, no gate).
    """
    if version is None and (reason or by):
        # a gated promotion records nothing: the text would be dropped without a word
        raise typer.BadParameter("--reason and --by record a rollback: give --version too")
    console = Console()
    _home_uri(console)
    if version is not None:
        _rollback(task, str(version), console, by=by, reason=reason)
        return
    try:
        with quiet_libraries():  # MLflow's INFO lines on a version whose files are gone
            decision = promote(task, console)
    except (
        registry.ModelNotFoundError,
        ModelFilesMissingError,
        registry.ModelIntegrityError,
    ) as exc:
        console.print(f"[red]not promoted:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.print(decision_text(task, decision, markup=True))
    if not (decision.promote or decision.already):
        raise typer.Exit(1)


def _rollback(task: str, version: str, console: Console, *, by: str, reason: str) -> None:
    """Run ``guanxi promote --version``: say the move and how to go back, or why not (exit 1)."""
    try:
        with quiet_libraries():  # MLflow's INFO lines on a version whose files are gone
            previous = make_champion(task, version, by=by, reason=reason)
    except (
        registry.ModelNotFoundError,
        ModelFilesMissingError,
        ValueError,
        MlflowException,
    ) as exc:
        said = "; ".join([str(exc), *getattr(exc, "__notes__", ())])
        console.print(f"[red]not promoted:[/red] {escape(said)}")
        raise typer.Exit(1) from exc
    if previous == version:
        console.print(f"version {version} is already the {task} champion")
        return
    back = (
        "there was no champion before"
        if previous is None
        else f"the champion was version {previous}; to go back: "
        f"`guanxi promote --task {task} --version {previous}`"
    )
    console.print(
        f"[green]promoted[/green] {task}@{registry.CHAMPION}: version {version}, "
        f"chosen with --version (no gate); {back}"
    )


def models_command(
    task: Annotated[
        str | None,
        typer.Option(help="Only this task (default: every task).", callback=check_task),
    ] = None,
) -> None:
    """List registered model versions with their aliases, grade and key held-out metrics.

    A champion made by a rollback is said under the table: who, when and why.
    """
    console = Console()
    uri = _home_uri(console)
    # two spaces between columns (padding collapsed), none at the edges: at 80 columns every column
    # keeps its width, the run id whole and a promoted challenger's aliases on two lines
    table = Table(
        title=f"registered models ({uri})",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        show_edge=False,
    )
    table.add_column("task", min_width=10)
    table.add_column("ver", min_width=3)
    # at least as wide as "(was challenger)": at 80 columns "champion (was challenger)" wraps
    # onto two lines, not four ("champion / (was / challenger / )" in session 19's F8)
    table.add_column("aliases", overflow="fold", min_width=len(_PROMOTED_NOTE))
    table.add_column("grade", min_width=5)
    for header in KEY_METRICS.values():
        table.add_column(header, justify="right", min_width=max(map(len, header.splitlines())))
    table.add_column("run", min_width=8)
    found = 0
    for name in [task] if task else list(task_names()):
        for v in registry.list_versions(name):
            found += 1
            table.add_row(
                v.task,
                v.version,
                "\n".join(shown_aliases(v.aliases)) or MISSING,
                # a rule-backed version is the rule itself: said beside its grade
                v.tags.get("grade", MISSING) + (" (rule)" if registry.is_rule_backed(v) else ""),
                *(_short(v.tags.get(_own_metric(m, v))) for m in KEY_METRICS),
                (v.run_id or MISSING)[:8],
            )
    if not found:
        console.print("no registered models yet: train one with `guanxi train`")
        return
    console.print(table)
    for name in [task] if task else list(task_names()):
        said = registry.rollback_text(registry.get_version(name, registry.CHAMPION))
        if said is not None:
            console.print(f"{name}@{registry.CHAMPION}: {escape(said)}", soft_wrap=True)


_PROMOTED_NOTE: Final = f"(was {registry.CHALLENGER})"
"""What ``guanxi models`` says after ``champion`` on a promoted challenger."""


def shown_aliases(aliases: Sequence[str]) -> list[str]:
    """Word a version's aliases for people: a promoted challenger is ``champion (was challenger)``.

    Promotion moves ``champion`` onto the challenger and leaves ``challenger`` where it is, until
    the next ``guanxi train`` moves it: ``guanxi promote`` (and a resumed ``guanxi cycle``) reads
    a challenger that is champion as "already promoted". The listing says so instead of showing
    both aliases as if they were two roles.

    Parameters
    ----------
    aliases : sequence of str
        The version's registry aliases.

    Returns
    -------
    list of str
        The aliases, ``champion`` and ``challenger`` on one version as one entry.
    """
    both = {registry.CHAMPION, registry.CHALLENGER}
    if not both <= set(aliases):
        return list(aliases)
    promoted = f"{registry.CHAMPION} {_PROMOTED_NOTE}"
    return [promoted, *(a for a in aliases if a not in both)]


def _own_metric(key: str, version: registry.VersionInfo) -> str:
    """Return a rule-backed version's own key where the listing shows the model's metric."""
    if registry.is_rule_backed(version) and key.startswith("xgboost_"):
        return f"{RULE_BACKED}_{key.removeprefix('xgboost_')}"
    return key


def _short(value: str | None) -> str:
    """Write a metric tag to 3 decimals; none as the other tables do (:data:`MISSING`).

    A figure missing was ``-`` here, which reads as a minus sign, and ``—`` in the drift, cycle,
    value, plan and campaign tables.
    """
    try:
        return MISSING if value is None else f"{float(value):.3f}"
    except ValueError:
        return value or MISSING
