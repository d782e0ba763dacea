"""Which champions the service loads from the registry."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from models import registry
from models.artifact import ModelBundle
from serving.loader import RegistrySource
from serving.settings import get_settings
from training.tracking import experiment_id


def _champion(bundle: ModelBundle, x: pd.DataFrame, home: Path) -> None:
    with mlflow.start_run(experiment_id=experiment_id(bundle.task, home)):
        uri = registry.log_bundle(bundle, x.head(5))
    version = registry.register_challenger(bundle.task, uri, {"grade": "A"})
    registry.set_alias(bundle.task, registry.CHAMPION, version)


def test_a_task_the_gate_kept_out_is_not_served_unless_named(
    local_tracking: Path, tiny_bundle: ModelBundle, tiny_data, monkeypatch: pytest.MonkeyPatch
) -> None:
    get_settings.cache_clear()
    monkeypatch.delenv("GUANXI_TASKS", raising=False)
    settings = get_settings()
    with pytest.raises(registry.ModelNotFoundError, match="no task has a champion version"):
        RegistrySource(settings).load_models(settings.tasks, registry.CHAMPION)

    _champion(tiny_bundle, tiny_data[0], local_tracking)
    # every task by default: the ones with a champion are served (cross-sell without one is not)
    loaded = RegistrySource(settings).load_models(settings.tasks, registry.CHAMPION)
    assert list(loaded) == ["churn"] and loaded["churn"].version == "1"

    # a task named in GUANXI_TASKS must have one
    monkeypatch.setenv("GUANXI_TASKS", '["churn", "cross_sell"]')
    get_settings.cache_clear()
    named = get_settings()
    with pytest.raises(registry.ModelNotFoundError, match="cross_sell"):
        RegistrySource(named).load_models(named.tasks, registry.CHAMPION)
    get_settings.cache_clear()
