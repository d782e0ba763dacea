"""`guanxi promote` refuses a challenger of another task definition, and an in-sample day (qa49 H1).

Training stubbed as in ``test_train_cli.py``; each bundle's metadata records its horizon,
population and cutoffs as :func:`training.train.train_task` writes them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from mlflow import MlflowClient
from typer.testing import CliRunner

from models import registry
from models.artifact import ModelBundle
from models.definitions import DefinitionUnreadableError
from models.tasks import ACTIVE_BUYERS, EVERY_CUSTOMER, Population
from pipelines.cli import app
from pipelines.promote import DEFINITION_TAG, _definition_change, fitted_until, task_definition
from tests.pipelines.test_train_cli import _result, _train, cli, sample  # noqa: F401  (fixtures)


def _defined(
    bundle: ModelBundle,
    horizon: int,
    *,
    test: str,
    validation: str,
    active_days: int = 365,
    train: tuple[str, ...] = ("2024-01-01", "2024-01-31"),
    population: Population = ACTIVE_BUYERS,
) -> ModelBundle:
    """``bundle`` with the metadata training writes: horizon, population and cutoffs."""
    cutoffs = {"train": list(train), "validation": validation, "test": test, "split": "time"}
    params = {"horizon": horizon, "active_days": active_days, "cutoffs": cutoffs}
    recorded = population.describe(active_days)
    return replace(bundle, metadata={**bundle.metadata, "params": params, "population": recorded})


@pytest.fixture
def weak_bundle(tiny_bundle: ModelBundle, tiny_data: Any) -> ModelBundle:
    """A churn bundle fitted on shuffled labels: any fitted challenger beats it."""
    x, y = tiny_data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 1, "seed": 0, "nthread": 1},
        xgb.DMatrix(x.to_numpy(), label=np.random.default_rng(1).permutation(y), missing=np.nan),
        num_boost_round=2,
    )
    return replace(tiny_bundle, booster=booster)


def _champion(cli: CliRunner, sample: Path, monkeypatch: Any, bundle: ModelBundle, data: Any):  # noqa: F811
    _train(cli, sample, monkeypatch, _result(bundle, data, "B"))
    assert cli.invoke(app, ["promote", "--task", "churn"]).exit_code == 0


def _said(result: Any) -> str:
    return " ".join(result.output.split())


def _champion_version() -> str:
    found = registry.get_version("churn", registry.CHAMPION)
    assert found is not None
    return str(found.version)


def test_the_definition_and_the_last_label_day_are_read_from_the_metadata(
    tiny_bundle: ModelBundle,
) -> None:
    bundle = _defined(tiny_bundle, 30, test="2025-12-01", validation="2025-11-01")
    assert task_definition(bundle) == {"horizon": 30, "active_days": 365}
    # the validation cutoff's labels reach 30 days past it
    assert str(fitted_until(bundle)) == "2025-12-01"
    customer = replace(
        bundle,
        metadata={
            **bundle.metadata,
            "params": {
                **bundle.metadata["params"],
                "cutoffs": {
                    "train": ["2025-09-02"],
                    "validation": "2025-12-01",
                    "split": "customer",
                },
            },
        },
    )
    # the customer-grouped hold-out validates on half of the test cutoff, its own held-out day
    assert str(fitted_until(customer)) == "2025-10-02"
    assert task_definition(tiny_bundle) == {} and fitted_until(tiny_bundle) is None


def test_a_challenger_of_another_horizon_is_refused_unless_the_change_is_on_purpose(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    weak_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """qa49 H1: a 30-day churn model was promoted over the 90-day champion, judged on 30-day
    labels, without a word: what "churn" means changed for the whole service. It is refused,
    naming both horizons and the flag; with --new-definition the comparison is said to be across
    definitions and the promotion recorded on the version."""
    old = _defined(weak_bundle, 90, test="2024-07-03", validation="2024-04-04")
    _champion(cli, sample, monkeypatch, old, tiny_data)
    new = _defined(tiny_bundle, 30, test="2024-10-01", validation="2024-09-01")
    _train(cli, sample, monkeypatch, _result(new, tiny_data, "B"))

    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    said = _said(result)
    assert result.exit_code == 1, said
    assert (
        "not promoted: the challenger's task definition differs from champion version 1's: "
        "horizon 30 days (champion 90 days)" in said
    )
    assert "`guanxi promote --task churn --new-definition`" in said
    assert _champion_version() == "1"

    args = ["promote", "--task", "churn", "--new-definition"]
    result = cli.invoke(app, args, env={"COLUMNS": "1000"})
    said = _said(result)
    assert result.exit_code == 0, said
    assert "promoted churn@champion: grade B passes and the challenger beats the champion" in said
    assert (
        "on the challenger's held-out rows, across definitions (horizon 30 days (champion 90 "
        "days); the champion judged on the challenger's labels)" in said
    )
    assert (
        "the task definition changes: horizon 30 days (champion 90 days) (recorded on version 2)"
        in said
    )
    assert _champion_version() == "2"
    record = json.loads(MlflowClient().get_model_version("churn", "2").tags[DEFINITION_TAG])
    assert (record["from"], record["changed"]) == ("1", {"horizon": [90, 30]})

    with_version = ["promote", "--task", "churn", "--version", "1", "--new-definition"]
    assert cli.invoke(app, with_version).exit_code == 2  # the flag is the gate's


def test_the_activity_window_counts_only_for_a_population_that_reads_it(
    tiny_bundle: ModelBundle,
) -> None:
    """review55 L1: a cross-sell challenger of another --active-days was refused, though its
    population (every customer) is the same at every window."""
    days = {"test": "2024-08-02", "validation": "2024-05-04"}
    every = [
        _defined(tiny_bundle, 90, active_days=n, population=EVERY_CUSTOMER, **days)
        for n in (365, 180)
    ]
    assert _definition_change(*every) == {}
    active = [_defined(tiny_bundle, 90, active_days=n, **days) for n in (365, 180)]
    assert _definition_change(*active) == {"active_days": (365, 180)}
    # a population recorded without its rule is compared by its window, as before
    bare = [
        replace(b, metadata={**b.metadata, "population": {"active_days": n}})
        for b, n in zip(every, (365, 180), strict=True)
    ]
    assert _definition_change(*bare) == {"active_days": (365, 180)}


def test_the_gate_does_not_pass_a_version_whose_recorded_horizon_is_unreadable(
    tiny_bundle: ModelBundle,
) -> None:
    """An unreadable horizon was counted as not recorded: the gate compared nothing and passed;
    now it names the version, its field and value (``promote`` refuses with it, the champion
    kept)."""
    days = {"test": "2024-08-02", "validation": "2024-05-04"}
    champion = _defined(tiny_bundle, 90, **days)
    params = {**champion.metadata["params"], "horizon": "ninety"}
    challenger = replace(champion, metadata={**champion.metadata, "params": params})
    with pytest.raises(DefinitionUnreadableError) as raised:
        _definition_change(champion, challenger, "1", "2")
    assert str(raised.value) == (
        "challenger version 2's recorded horizon (metadata params.horizon) is 'ninety', not a "
        "whole number of days: the task definition cannot be read"
    )
    with pytest.raises(DefinitionUnreadableError):
        task_definition(challenger)


def test_new_definition_with_the_same_definition_says_it_changes_nothing(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    weak_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """review55 L5: the flag was accepted and ignored without a word."""
    old = _defined(weak_bundle, 90, test="2024-07-03", validation="2024-04-04")
    _champion(cli, sample, monkeypatch, old, tiny_data)
    new = _defined(tiny_bundle, 90, test="2024-08-02", validation="2024-05-04")
    _train(cli, sample, monkeypatch, _result(new, tiny_data, "B"))
    args = ["promote", "--task", "churn", "--new-definition"]
    result = cli.invoke(app, args, env={"COLUMNS": "1000"})
    said = _said(result)
    assert result.exit_code == 0, said
    assert "the task definitions are the same: --new-definition changes nothing" in said
    assert "across definitions" not in said and "recorded on version" not in said
    assert DEFINITION_TAG not in (MlflowClient().get_model_version("churn", "2").tags or {})


def test_a_challenger_of_another_population_is_refused(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    weak_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """The population (`--active-days`) defines who is labelled too."""
    old = _defined(weak_bundle, 90, test="2024-07-03", validation="2024-04-04")
    _champion(cli, sample, monkeypatch, old, tiny_data)
    new = _defined(tiny_bundle, 90, test="2024-08-02", validation="2024-05-04", active_days=180)
    _train(cli, sample, monkeypatch, _result(new, tiny_data, "B"))
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    assert result.exit_code == 1, result.output
    assert "population's activity window 180 days (champion 365 days)" in _said(result)
    assert _champion_version() == "1"


def test_a_held_out_day_the_champion_learnt_from_is_not_compared_on(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    weak_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """qa49 H1: a challenger's held-out cutoff was one of the champion's training cutoffs, so
    the gate printed and acted on the champion's in-sample figure. A day before the last one the
    champion's training or validation labels reach is refused, naming the first day held out for
    both and the --as-of that tests on it; a challenger held out from that day on is compared."""
    old = _defined(weak_bundle, 30, test="2024-08-01", validation="2024-07-02")
    _champion(cli, sample, monkeypatch, old, tiny_data)
    inside = _defined(tiny_bundle, 30, test="2024-07-02", validation="2024-06-02")
    _train(cli, sample, monkeypatch, _result(inside, tiny_data, "B"))
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    said = _said(result)
    assert result.exit_code == 1, said
    assert (
        "not promoted: the challenger's held-out day 2024-07-02 is not held out for champion "
        "version 1: its training and validation labels reach 2024-08-01, so its figure there "
        "would be in-sample. Not compared, the champion kept: the first day held out for both "
        "is 2024-08-01 (train the challenger with --as-of 2024-08-31 or later); or make it "
        "champion without the gate, an operator's choice: `guanxi promote --task churn "
        "--version 2`" in said
    )
    assert "vs champion" not in said and _champion_version() == "1"

    after = _defined(tiny_bundle, 30, test="2024-08-01", validation="2024-07-02")
    _train(cli, sample, monkeypatch, _result(after, tiny_data, "B"))
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    assert "beats the champion" in _said(result) and "across" not in _said(result)
    assert _champion_version() == "3"


@pytest.mark.parametrize("unreadable", ["challenger", "champion"])
def test_a_refusal_of_an_unreadable_definition_names_the_ways_out(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    weak_bundle: ModelBundle,
    tiny_data: Any,
    unreadable: str,
) -> None:
    """The refusal said the record could not be read and stopped there: it names the operator's
    promotion without the gate, and training again when the challenger's is the unreadable one."""
    days = {"test": "2024-08-02", "validation": "2024-05-04"}
    old = _defined(weak_bundle, 90, test="2024-07-03", validation="2024-04-04")
    new = _defined(tiny_bundle, 90, **days)
    bad = old if unreadable == "champion" else new
    params = {**bad.metadata["params"], "horizon": "ninety"}
    bad = replace(bad, metadata={**bad.metadata, "params": params})
    old, new = (bad, new) if unreadable == "champion" else (old, bad)
    _champion(cli, sample, monkeypatch, old, tiny_data)
    _train(cli, sample, monkeypatch, _result(new, tiny_data, "B"))
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    assert result.exit_code == 1, result.output
    number = "1" if unreadable == "champion" else "2"
    again = (
        "; train again (`guanxi train --task churn ...`: the new version is the challenger)"
        if unreadable == "challenger"
        else ""
    )
    assert (
        f"{unreadable} version {number}'s recorded horizon (metadata params.horizon) is 'ninety', "
        "not a whole number of days: the task definition cannot be read: not compared, the "
        f"champion kept{again}; or make it champion without the gate, an operator's choice: "
        "`guanxi promote --task churn --version 2`"
    ) in _said(result)
    assert _champion_version() == "1"
