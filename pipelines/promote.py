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
   served any more), or its files are gone (:class:`models.versions.ModelFilesMissingError`:
   it can be neither compared against nor served; said), the grade alone decides.

Two refusals come before the comparison (not promoted, the champion kept, exit 1):

- the challenger's task definition differs from the champion's (:func:`task_definition`: the
  label window ``horizon`` and the population's ``active_days``, as training records them in
  the model's metadata; the window only where the population's rule reads it): a 30-day churn
  model promoted over a 90-day one changed what "churn" means for the service without a word.
  ``--new-definition`` says the change is on purpose: the comparison is then said to be across
  definitions (the champion judged on the challenger's labels) and a promotion is recorded on
  the version (tag :data:`DEFINITION_TAG`, :func:`record_definition_change`);
- the challenger's held-out day is not held out for the champion (:func:`fitted_until`): the
  champion's training or validation labels reach past it, so its figure there would be
  in-sample. The held-out rows are of that one day, so no later day can be chosen: the refusal
  names the first day held out for both and the ``--as-of`` of a challenger tested on it, or
  ``--version`` (no gate, the operator's choice).

A bundle whose metadata does not record these settings (not written by ``guanxi train``) is
compared as before.

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

import contextlib
import getpass
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final

import numpy as np
import pandas as pd
import polars as pl
import typer
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from features.contracts import MISSING
from features.snapshot import completion_columns
from models import registry
from models.aliases import PROMOTED_NOTE, shown_aliases
from models.artifact import RULE_BACKED, ModelBundle
from models.definitions import Definition, DefinitionUnreadableError, changes, definition
from models.registry import (
    TrackingUnavailableError,
    check_tracking,
    configure_tracking,
    load_holdout,
)
from models.tasks import completed_categories, get_task, task_names
from models.versions import ModelFilesMissingError, load_version
from pipelines.console import quiet_libraries
from pipelines.score import check_task

__all__ = [
    "DEFINITION_TAG",
    "KEY_METRICS",
    "PASSING_GRADES",
    "Decision",
    "decide",
    "decision_text",
    "fitted_until",
    "make_champion",
    "models_command",
    "promote",
    "promote_command",
    "record_definition_change",
    "serve_rule",
    "task_definition",
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
    across: str = "",
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
    across : str, default ""
        How the two models' task definitions differ (``--new-definition``): said after the
        figures, "across definitions (...)"; empty when they are the same.

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
        + (
            f", across definitions ({across}; the champion judged on the challenger's labels)"
            if across
            else ""
        )
    )
    if not (np.isfinite(auc) and np.isfinite(auc0)):
        return Decision(False, f"held-out rows hold one class only, cannot compare ({figures})")
    if auc > auc0 and pr >= pr0:
        return Decision(
            True, f"grade {grade} passes and the challenger beats the champion: {figures}"
        )
    return Decision(False, f"the challenger does not beat the champion: {figures}")


def promote(task: str, console: Console, *, new_definition: bool = False) -> Decision:
    """Run the gate for one task and move ``champion`` when it passes.

    Parameters
    ----------
    task : str
        Registered model name.
    console : rich.console.Console
        Where progress goes.
    new_definition : bool, default False
        The challenger's task definition (horizon, population) may differ from the champion's
        on purpose: compare across definitions, said, and record the change on the version
        when it is promoted. Without it such a challenger is refused (module docstring).

    Returns
    -------
    Decision
        What was decided (the alias has moved when ``promote`` is true).

    Raises
    ------
    models.registry.ModelNotFoundError
        If the task has no challenger.
    models.versions.ModelFilesMissingError
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
    changed: dict[str, tuple[int, int]] = {}
    if champion is None or old is None:
        decision = decide(grade)
    else:
        new = load_version(task, version=version).bundle
        refusal = None
        try:
            changed = _definition_change(old, new, str(champion.version), version)
        except DefinitionUnreadableError as exc:  # was passed without comparing
            refusal = _unreadable_refusal(task, version, new, exc)
        else:
            if changed and not new_definition:
                refusal = _definition_refusal(task, str(champion.version), changed)
            elif old.feature_set_version == new.feature_set_version:
                refusal = _in_sample_refusal(task, str(champion.version), version, old, new)
        if refusal is not None:
            decision = Decision(False, refusal)
        elif old.feature_set_version != new.feature_set_version:
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
                across=_said_change(changed),
            )
    if new_definition and champion is not None and grade in PASSING_GRADES and not changed:
        # was accepted without a word (review55 L5)
        console.print(
            "the task definitions are the same: --new-definition changes nothing"
            if old is not None
            else f"champion version {champion.version}'s task definition is unknown (it cannot "
            "be read): --new-definition records nothing"
        )
    if decision.promote:
        if changed and champion is not None:
            decision = replace(
                decision,
                reason=f"{decision.reason}; the task definition changes: "
                f"{_said_change(changed)} (recorded on version {version})",
            )
            record_definition_change(
                task, version, str(champion.version), {k: list(v) for k, v in changed.items()}
            )
        else:
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


DEFINITION_TAG: Final = "new_definition"
"""Version tag recording that a gated promotion changed the task definition
(``guanxi promote --new-definition``): one JSON object (``from``: the champion's version before,
``changed``: setting name to ``[champion's, version's]``, ``at`` in UTC ISO 8601).

Here, not in :mod:`models.registry`, because only this path writes it: the registry module is
on nearly every published figure's path (``python -m bench.staleness``)."""


def record_definition_change(
    task: str, version: str, previous: str, changed: Mapping[str, Any]
) -> None:
    """Make ``version`` champion as a gated promotion that changes the task definition.

    The record (version tag :data:`DEFINITION_TAG`, one call) is written first, then
    ``champion`` moves (:func:`models.registry.set_champion`); if the move fails the record is
    removed, so no record says a promotion happened that did not.

    Parameters
    ----------
    task : str
        Registered model name.
    version : str
        The version to make champion.
    previous : str
        The champion's version before.
    changed : mapping
        The settings that differ, name to ``[champion's, version's]``.
    """
    client = MlflowClient()
    at = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"from": previous, "changed": dict(changed), "at": at}
    client.set_model_version_tag(task, version, DEFINITION_TAG, json.dumps(record))
    try:
        registry.set_champion(task, version)
    except Exception:
        with contextlib.suppress(Exception):
            client.delete_model_version_tag(task, version, DEFINITION_TAG)
        raise


_DEFINITION_WORDS: Final = {"horizon": "horizon", "active_days": "population's activity window"}
"""The label-defining settings :func:`task_definition` reads, as the gate names them."""


def task_definition(bundle: ModelBundle) -> dict[str, int]:
    """Return the settings that define a model's labels, as training recorded them (pure).

    The one reader of a version's definition (:func:`models.definitions.definition`), which
    the model page reads too.

    Parameters
    ----------
    bundle : models.artifact.ModelBundle
        A model (its ``metadata`` as :func:`training.train.train_task` writes it).

    Returns
    -------
    dict of str to int
        ``horizon`` (``params.horizon``: the label window in days) and ``active_days``
        (``population.active_days``, else ``params.active_days``: the population's activity
        window), each only when recorded.
    """
    return definition(bundle).recorded()


def _definition_change(
    old: ModelBundle, new: ModelBundle, champion: str = "", challenger: str = ""
) -> dict[str, tuple[int, int]]:
    """Return the settings both record that differ: name to (champion's, challenger's).

    The activity window counts only when it changes who the population is: not when both
    record the same population rule (:meth:`models.definitions.Definition.same_population`:
    :meth:`models.tasks.Population.describe`'s ``eligible`` and ``outside`` texts, which name
    the window when the rule reads it), as for a task that scores every customer. Compared as
    the model page compares two versions (:func:`models.definitions.changes`). A window
    recorded but unreadable raises :class:`models.definitions.DefinitionUnreadableError`, naming
    the version (``champion``, ``challenger``: their numbers).
    """
    before = _defined(old, f"champion version {champion}" if champion else "the champion")
    after = _defined(new, f"challenger version {challenger}" if challenger else "the challenger")
    return changes(before, after, window=not before.same_population(after))


def _defined(bundle: ModelBundle, who: str) -> Definition:
    """Read a version's definition; one unreadable raises, naming ``who`` ("champion version 3")."""
    try:
        return definition(bundle)
    except DefinitionUnreadableError as exc:
        raise DefinitionUnreadableError(f"{who}'s recorded {exc}") from exc


def _said_change(changed: dict[str, tuple[int, int]]) -> str:
    """Say a definition change: ``horizon 30 days (champion 90 days)``, in a fixed order."""
    return ", ".join(
        f"{_DEFINITION_WORDS[k]} {changed[k][1]} days (champion {changed[k][0]} days)"
        for k in _DEFINITION_WORDS
        if k in changed
    )


def _definition_refusal(task: str, champion: str, changed: dict[str, tuple[int, int]]) -> str:
    """Say why a challenger of another task definition is not compared (no flag)."""
    return (
        f"the challenger's task definition differs from champion version {champion}'s: "
        f"{_said_change(changed)}; its figures would judge the champion on labels it was not "
        "trained for, and promoting it would change what the service predicts. Not compared, "
        "the champion kept: if the definition changes on purpose, run "
        f"`guanxi promote --task {task} --new-definition`"
    )


def _day(value: Any) -> date:
    """Read a cutoff as the metadata keeps it (ISO text, or a date)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def fitted_until(bundle: ModelBundle) -> date | None:
    """Return the last day a model's training or validation labels reach (pure).

    Parameters
    ----------
    bundle : models.artifact.ModelBundle
        A model (its ``metadata["params"]``: ``cutoffs`` and ``horizon``).

    Returns
    -------
    datetime.date or None
        The latest of its training cutoffs and, with the time split, its validation cutoff
        (early stopping, tuning and calibration), plus its horizon: a cutoff before it has
        labels the model learnt from, so its figure there is in-sample. With the
        customer-grouped hold-out the validation half is of the test cutoff, which stays the
        model's own held-out day. None when not recorded.
    """
    params = (bundle.metadata or {}).get("params") or {}
    cutoffs = params.get("cutoffs") or {}
    fitted = list(cutoffs.get("train") or ())
    if cutoffs.get("split", "time") == "time" and cutoffs.get("validation"):
        fitted.append(cutoffs["validation"])
    if not fitted or params.get("horizon") is None:
        return None
    return max(map(_day, fitted)) + timedelta(days=int(params["horizon"]))


def _in_sample_refusal(
    task: str, champion: str, version: str, old: ModelBundle, new: ModelBundle
) -> str | None:
    """Say why the challenger's held-out day cannot judge the champion; None when it can."""
    reached = fitted_until(old)
    params = (new.metadata or {}).get("params") or {}
    test = (params.get("cutoffs") or {}).get("test")
    if reached is None or test is None or _day(test) >= reached:
        return None
    horizon = task_definition(new).get("horizon")
    retrain = (
        ""
        if horizon is None
        else f" (train the challenger with --as-of {reached + timedelta(days=horizon)} or later)"
    )
    return (
        f"the challenger's held-out day {_day(test)} is not held out for champion version "
        f"{champion}: its training and validation labels reach {reached}, so its figure there "
        f"would be in-sample. Not compared, the champion kept: the first day held out for both "
        f"is {reached}{retrain}; or make it champion without the gate, an operator's choice: "
        f"`guanxi promote --task {task} --version {version}`"
    )


def _unreadable_refusal(
    task: str, version: str, new: ModelBundle, error: DefinitionUnreadableError
) -> str:
    """Say a recorded definition cannot be read, and the ways out (was the error alone).

    Training again makes a new challenger when the challenger's record is the unreadable one;
    either way the operator may make it champion without the gate (``--version``).
    """
    try:
        definition(new)
        again = ""
    except DefinitionUnreadableError:
        again = (
            f"; train again (`guanxi train --task {task} ...`: the new version is the challenger)"
        )
    return (
        f"{error}: not compared, the champion kept{again}; or make it champion without the "
        f"gate, an operator's choice: `guanxi promote --task {task} --version {version}`"
    )


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
    models.versions.ModelFilesMissingError
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
    new_definition: Annotated[
        bool,
        typer.Option(
            "--new-definition",
            help="The challenger's task definition (horizon, population's activity window) "
            "differs from the champion's on purpose: compare across definitions, and record "
            "the change on the version if it is promoted (without it such a challenger is "
            "refused).",
        ),
    ] = False,
) -> None:
    """Make the challenger the champion if it passes the gate (grade, then beats the champion).

    With --version N, make version N the champion instead (rollback, no gate).
    """
    if version is None and (reason or by):
        # a gated promotion records nothing: the text would be dropped without a word
        raise typer.BadParameter("--reason and --by record a rollback: give --version too")
    if version is not None and new_definition:
        raise typer.BadParameter("--new-definition is for the gate; --version skips the gate")
    console = Console()
    _home_uri(console)
    if version is not None:
        _rollback(task, str(version), console, by=by, reason=reason)
        return
    try:
        with quiet_libraries():  # MLflow's INFO lines on a version whose files are gone
            decision = promote(task, console, new_definition=new_definition)
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
    table.add_column("aliases", overflow="fold", min_width=len(PROMOTED_NOTE))
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
