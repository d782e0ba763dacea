"""A model version's task definition, read one way for the promotion gate and the model page.

What a version predicts is defined by the settings its labels were made with: the label window
(``horizon``, days) and the population's activity window (``active_days``, days), with the
population rule the version recorded. ``guanxi promote`` refuses a challenger of another
definition (:func:`pipelines.promote.task_definition`), and the model page compares a version's
metrics with another's only under the same one (:func:`serving.ui.cards.comparison_note`): both
read it here (:func:`definition`) and compare it here (:func:`changes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.artifact import ModelBundle

__all__ = ["Definition", "DefinitionUnreadableError", "changes", "definition", "recorded_int"]


class DefinitionUnreadableError(ValueError):
    """A version records a window that is not a whole number of days: its definition is unknown.

    The promotion gate says so rather than compare without it (:func:`definition`).
    """


@dataclass(frozen=True)
class Definition:
    """The settings that define a version's labels, each None when not recorded.

    Parameters
    ----------
    horizon : int, optional
        The label window, in days.
    active_days : int, optional
        The population's activity window, in days.
    population : tuple of (str, str), optional
        The population rule the version recorded: its ``eligible`` text and its ``outside``
        texts as JSON (:meth:`models.tasks.Population.describe`, which names the window when
        the rule reads it).
    """

    horizon: int | None = None
    active_days: int | None = None
    population: tuple[str, str] | None = None

    def recorded(self) -> dict[str, int]:
        """Return the windows recorded, by name (``horizon``, ``active_days``).

        Returns
        -------
        dict of str to int
            Each window the version records, in days; empty when none is.
        """
        both = {"horizon": self.horizon, "active_days": self.active_days}
        return {name: days for name, days in both.items() if days is not None}

    def same_population(self, other: Definition) -> bool:
        """Whether both record the same population rule (so the same customers, whatever window).

        Parameters
        ----------
        other : Definition
            The other version's.

        Returns
        -------
        bool
            True when both record a rule and it is the same; False when either records none.
        """
        return self.population is not None and self.population == other.population


def recorded_int(value: Any) -> int | None:
    """Read a recorded whole number: days, a seed (pure).

    Parameters
    ----------
    value : object
        As a version recorded it: a number in its metadata, or its text as MLflow keeps params
        (``"90"``, and ``"90.0"`` for one logged as a float).

    Returns
    -------
    int or None
        The whole number, every digit kept (read as an integer first: a float loses a big
        seed's last digits); None when ``value`` is None, a bool (``True`` is no count of days)
        or not a whole number (``"x"``, ``90.5``).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, float):
        try:
            return int(str(value).strip())
        except ValueError:  # "90.0", "x": read as a float below
            pass
    try:
        number = float(value) if isinstance(value, float) else float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None  # not nan nor infinity


def _first(name: str, *recorded: tuple[str, Any], lenient: bool) -> int | None:
    """Read the first window recorded (not None), named by where; None when none is.

    ``recorded``: (where, value) pairs, in the order they are read. A value that is not a whole
    number of days counts as not recorded when ``lenient``; else it raises
    :class:`DefinitionUnreadableError`, naming where and what.
    """
    where, value = next(((at, value) for at, value in recorded if value is not None), ("", None))
    days = recorded_int(value)
    if days is None and value is not None and not lenient:
        raise DefinitionUnreadableError(
            f"{name} ({where}) is {value!r}, not a whole number of days: the task definition "
            "cannot be read"
        )
    return days


def definition(
    bundle: ModelBundle | None,
    run_params: Mapping[str, Any] | None = None,
    *,
    lenient: bool = False,
) -> Definition:
    """Read a version's task definition as training recorded it (pure).

    Parameters
    ----------
    bundle : models.artifact.ModelBundle, optional
        The model (its ``metadata`` as :func:`training.train.train_task` writes it); None when
        only its run is read (a challenger's card, a previous version).
    run_params : mapping, optional
        The training run's params (text, as MLflow keeps them), for what the metadata lacks.
    lenient : bool, default False
        Whether a window recorded but not a whole number of days counts as not recorded (the
        model page, which shows what it can); by default it is an error (the promotion gate,
        which would otherwise pass a challenger without comparing).

    Returns
    -------
    Definition
        ``horizon``: the metadata's ``params.horizon``, else the run's; ``active_days``: the
        metadata's ``population.active_days``, else its ``params.active_days``, else the run's;
        ``population``: the recorded rule (``population.eligible`` and ``outside``). Each None
        when not recorded (or, ``lenient``, not readable as a whole number of days).

    Raises
    ------
    DefinitionUnreadableError
        If a window is recorded but is not a whole number of days (not ``lenient``): where,
        and what it is.
    """
    meta = (bundle.metadata if bundle is not None else None) or {}
    params = meta.get("params") or {}
    population = meta.get("population") or {}
    run = run_params or {}
    rule = (
        None
        if population.get("eligible") is None
        else (str(population["eligible"]), json.dumps(population.get("outside"), sort_keys=True))
    )
    return Definition(
        horizon=_first(
            "horizon",
            ("metadata params.horizon", params.get("horizon")),
            ("run param horizon", run.get("horizon")),
            lenient=lenient,
        ),
        active_days=_first(
            "activity window",
            ("metadata population.active_days", population.get("active_days")),
            ("metadata params.active_days", params.get("active_days")),
            ("run param active_days", run.get("active_days")),
            lenient=lenient,
        ),
        population=rule,
    )


def changes(
    then: Definition, now: Definition, *, window: bool = True
) -> dict[str, tuple[int, int]]:
    """Return the windows both definitions record that differ: name to (then's, now's).

    Parameters
    ----------
    then, now : Definition
        The earlier version's (the champion's) and the later one's (the challenger's).
    window : bool, default True
        Whether the activity window counts: not when the population does not read it
        (:attr:`models.tasks.Population.uses_active_days`), nor when both record the same
        population rule (:meth:`Definition.same_population`: the same customers).

    Returns
    -------
    dict of str to tuple of (int, int)
        ``horizon`` and ``active_days`` (with ``window``), each only when both record it and
        the two differ, in that order; empty when they define the labels alike.
    """
    before, after = then.recorded(), now.recorded()
    names = ["horizon", "active_days"] if window else ["horizon"]
    return {
        name: (before[name], after[name])
        for name in names
        if name in before and name in after and before[name] != after[name]
    }
