from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from models import registry
from models.artifact import ModelBundle
from training.tracking import experiment_id


def _log(bundle: ModelBundle, x, home) -> tuple[str, str]:
    exp = experiment_id(bundle.task, home)
    with mlflow.start_run(experiment_id=exp) as run:
        uri = registry.log_bundle(bundle, x.head(5))
    return run.info.run_id, uri


def test_log_register_load_roundtrip(local_tracking, tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    run_id, uri = _log(tiny_bundle, x, local_tracking)
    version = registry.register_challenger("churn", uri, {"grade": "B", "xgboost_roc_auc": 0.81})
    assert version == "1"
    mv = registry.get_version("churn", registry.CHALLENGER)
    assert mv is not None and mv.run_id == run_id and mv.tags["grade"] == "B"
    assert registry.get_version("churn", registry.CHAMPION) is None
    assert registry.get_version("repurchase", registry.CHAMPION) is None

    loaded = registry.load_bundle("churn", alias=registry.CHALLENGER)
    np.testing.assert_array_equal(loaded.predict_proba(x), tiny_bundle.predict_proba(x))
    assert loaded.metadata["registry"] == {"name": "churn", "version": "1"}
    # artifacts live under GUANXI_HOME, not in the working directory
    assert any((local_tracking / "mlartifacts").rglob("model.ubj"))

    # the same model through MLflow's pyfunc (models from code, no pickle)
    pyfunc = mlflow.pyfunc.load_model("models:/churn@challenger")
    np.testing.assert_allclose(pyfunc.predict(x[loaded.feature_names]), loaded.predict_proba(x))
    assert pyfunc.metadata.signature is not None


def test_aliases_and_listing(local_tracking, tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    for grade in ("C", "A"):
        _, uri = _log(tiny_bundle, x, local_tracking)
        registry.register_challenger("churn", uri, {"grade": grade})
    registry.set_alias("churn", registry.CHAMPION, "1")
    listed = registry.list_versions("churn")
    assert [v.version for v in listed] == ["2", "1"]
    assert listed[0].aliases == ("challenger",) and listed[1].aliases == ("champion",)
    assert listed[0].tags["grade"] == "A"
    assert registry.list_versions("cross_sell") == []


def test_missing_model_is_a_clear_error(local_tracking) -> None:
    with pytest.raises(registry.ModelNotFoundError, match="'churn' with alias 'champion'"):
        registry.load_bundle("churn", alias="champion")
    with pytest.raises(ValueError, match="exactly one"):
        registry.load_bundle("churn")


def test_failed_alias_registers_nothing(
    local_tracking, tiny_bundle: ModelBundle, tiny_data, monkeypatch
) -> None:
    x, _ = tiny_data
    _, uri = _log(tiny_bundle, x, local_tracking)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(MlflowClient, "set_registered_model_alias", boom)
        registry.register_challenger("churn", uri, {})
    assert registry.list_versions("churn") == []
