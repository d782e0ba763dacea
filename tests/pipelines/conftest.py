"""Fixtures of the command tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from features.store import Store
from models.artifact import ModelBundle
from pipelines import connectors
from pipelines.cli import app
from serving.settings import get_settings


@pytest.fixture
def input_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which way each command reads its inputs: "staged" (validated into staged Parquet
    files, :meth:`pipelines.connectors.Inputs.stage`), "orders staged" (only the orders written,
    :meth:`pipelines.connectors.Inputs.stage_orders`) or "in memory"
    (:meth:`pipelines.connectors.Inputs.load`)."""
    calls: list[str] = []
    stage, load = connectors.Inputs.stage, connectors.Inputs.load
    stage_orders = connectors.Inputs.stage_orders

    def spy_stage(self: connectors.Inputs, now: object, folder: Path) -> object:
        calls.append("staged")
        return stage(self, now, folder)  # type: ignore[arg-type]

    def spy_stage_orders(self: connectors.Inputs, now: object, folder: Path) -> object:
        calls.append("orders staged")
        return stage_orders(self, now, folder)  # type: ignore[arg-type]

    def spy_load(self: connectors.Inputs, now: object) -> object:
        calls.append("in memory")
        return load(self, now)  # type: ignore[arg-type]

    monkeypatch.setattr(connectors.Inputs, "stage", spy_stage)
    monkeypatch.setattr(connectors.Inputs, "stage_orders", spy_stage_orders)
    monkeypatch.setattr(connectors.Inputs, "load", spy_load)
    return calls


@pytest.fixture
def train_churn(
    cli: CliRunner,
    sample: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> Callable[[], None]:
    """Train one more churn version of grade B (it passes the promotion gate) through `guanxi
    train`, training stubbed.

    ``cli`` and ``sample`` are the fixtures of ``tests.pipelines.test_train_cli``, which the
    requesting test module imports (a module's own ``sample`` is another data set)."""
    from tests.pipelines.test_train_cli import _result, _train

    def train() -> None:
        _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "B"))

    return train


@pytest.fixture
def champion(cli: CliRunner, train_churn: Callable[[], None]) -> None:
    """A churn model trained through `guanxi train` (training stubbed) and promoted: version 1
    (:func:`train_churn`)."""
    train_churn()
    assert cli.invoke(app, ["promote", "--task", "churn"]).exit_code == 0


@pytest.fixture
def challenger(champion: None, train_churn: Callable[[], None]) -> None:
    """Churn version 2 trained after the champion, version 1 (:func:`champion`): the
    challenger, of grade B, which passes the promotion gate; not promoted."""
    train_churn()


@pytest.fixture
def champion_store(champion: None) -> Store:
    """The store of ``GUANXI_HOME``, a churn champion promoted (:func:`champion`): the drift
    tests' start."""
    return Store(get_settings().home)
