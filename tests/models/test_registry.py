"""The one module that talks to MLflow: registering, loading, tracking URI, metric keys, tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models import registry
from models.artifact import BOOSTER_FILE, ModelBundle
from models.registry import (
    TrackingUnavailableError,
    check_tracking,
    configure_tracking,
    default_tracking_uri,
    flatten_metrics,
    metric_name,
    metric_title,
    nest_metrics,
)
from models.scoring import FeatureSetMismatchError
from models.versions import ModelFilesMissingError, load_version
from tests.processes import reserved_port
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

    loaded = registry.load_model("churn", alias=registry.CHALLENGER).bundle
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
        registry.load_model("churn", alias="champion")
    with pytest.raises(ValueError, match="exactly one"):
        registry.load_model("churn")


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


def test_flatten_metrics_prefixes_and_skips_non_numbers() -> None:
    metrics = {
        "xgboost": {"roc_auc": 0.8, "precision@5": 0.25, "n": 10},
        "rule": {"roc_auc": float("nan"), "name": "recency", "flag": True},
    }
    assert flatten_metrics(metrics) == {
        "xgboost_roc_auc": 0.8,
        "xgboost_precision_at_5": 0.25,
        "xgboost_n": 10.0,
    }
    assert metric_name("a b/c:d-e.f(g)") == "a b/c:d-e.f_g_"
    # named for people by the MLflow key as by the name; the key itself stays
    assert metric_title("ndcg_at_3") == metric_title("ndcg@3") == "NDCG@3"
    assert metric_title("roc_auc") == "ROC-AUC"  # as README, guanxi promote and guanxi drift
    assert metric_title("precision_at_1") == "precision@1"
    assert metric_title("ece") == "calibration error (ECE)"
    assert metric_title("some_new_metric") == "some new metric"
    # nested again when read back from MLflow (version tags are strings)
    assert nest_metrics({"xgboost_roc_auc": "0.8", "rule_pr_auc": 0.3, "other_x": 1.0}) == {
        "xgboost": {"roc_auc": 0.8},
        "rule": {"pr_auc": 0.3},
    }


def test_tracking_uri_defaults_to_home_and_env_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        uri = configure_tracking(tmp_path / "h")
        assert (
            uri == default_tracking_uri(tmp_path / "h") == f"sqlite:///{tmp_path / 'h'}/mlflow.db"
        )
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        assert configure_tracking(tmp_path / "h") == "http://127.0.0.1:9"
        assert mlflow.get_registry_uri() == "http://127.0.0.1:9"
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_check_tracking_gives_up_with_a_clear_message() -> None:
    check_tracking("sqlite:///anything.db")  # not a server: nothing to probe
    with (
        reserved_port() as port,  # held: nobody listens on it
        pytest.raises(TrackingUnavailableError, match="not reachable after 2 attempts"),
    ):
        check_tracking(f"http://127.0.0.1:{port}", attempts=2, timeout=0.5, wait=0.0)


def test_load_model_resolves_alias_or_version_and_checks_the_feature_set(
    local_tracking, tiny_bundle: ModelBundle, tiny_data
) -> None:
    x, _ = tiny_data
    _, uri = _log(tiny_bundle, x, local_tracking)
    registry.register_challenger("churn", uri, {"grade": "B"})
    old = dataclasses.replace(tiny_bundle, feature_set_version="0")
    _, old_uri = _log(old, x, local_tracking)
    registry.register_challenger("churn", old_uri, {"grade": "B"})
    registry.set_alias("churn", registry.CHAMPION, "1")
    champion = registry.load_model("churn", alias=registry.CHAMPION)
    assert (champion.name, champion.version, champion.aliases) == ("churn", "1", ("champion",))
    assert champion.tags["grade"] == "B" and champion.run_id
    np.testing.assert_allclose(champion.bundle.predict(x), tiny_bundle.predict(x))
    with pytest.raises(FeatureSetMismatchError, match="churn \\(version 2\\)"):
        registry.load_model("churn", version="2")
    assert registry.load_model("churn", version="2", check=False).bundle.feature_set_version == "0"
    with pytest.raises(registry.ModelNotFoundError):
        registry.load_model("churn", version="9")
    with pytest.raises(registry.ModelNotFoundError, match="alias 'nope'"):
        registry.load_model("churn", alias="nope")
    with pytest.raises(ValueError, match="exactly one"):
        registry.load_model("churn")


def test_evaluation_tables_are_written_and_read_through_the_registry(local_tracking) -> None:
    gains = pd.DataFrame({"decile": [1, 2], "lift": [2.0, 1.5]})
    with mlflow.start_run(experiment_id=experiment_id("churn", local_tracking)) as run:
        registry.log_tables({"gains": gains})
    assert registry.evaluation_path("gains") == "evaluation/gains.json"
    assert registry.read_table(run.info.run_id, "gains") == gains.to_dict("records")
    assert registry.read_table(run.info.run_id, "nothing") == []


def test_a_version_without_its_bundle_json_is_missing_files_not_a_digest_refusal(
    local_tracking, tiny_bundle: ModelBundle, tiny_data
) -> None:
    """promote27: a version whose ``bundle.json`` alone was gone was refused as "records no
    booster digest" (ModelIntegrityError), which `guanxi drift`, `cycle` and `promote` do not read
    as missing files; it is a FileNotFoundError naming the file inside the version's files."""
    x, _ = tiny_data
    _, uri = _log(tiny_bundle, x, local_tracking)
    registry.register_challenger("churn", uri, {"grade": "B"})
    files = Path(
        MlflowClient().get_model_version_download_uri("churn", "1").removeprefix("file://")
    )
    (meta,) = files.rglob("bundle.json")
    meta.unlink()
    with pytest.raises(FileNotFoundError, match=r"models:/churn/1: .*bundle\.json is missing") as e:
        registry.load_model("churn", version="1")
    assert e.value.filename == meta.relative_to(files).as_posix()


def test_a_version_without_its_booster_names_the_version_and_the_file(
    local_tracking, tiny_bundle: ModelBundle, tiny_data
) -> None:
    """heavy28: a version whose ``model.ubj`` was gone failed with "model bundle file
    /tmp/guanxi-model-.../model.ubj is missing", the download's temporary directory, not which
    version's file; it names the version and the file inside its files, as bundle.json's does
    (c2f722b), and guanxi's loads say that file of that version is missing."""
    x, _ = tiny_data
    _, uri = _log(tiny_bundle, x, local_tracking)
    registry.register_challenger("churn", uri, {"grade": "B"})
    files = Path(
        MlflowClient().get_model_version_download_uri("churn", "1").removeprefix("file://")
    )
    (booster,) = files.rglob(BOOSTER_FILE)
    booster.unlink()
    inside = booster.relative_to(files).as_posix()
    with pytest.raises(FileNotFoundError, match=r"models:/churn/1: .*model\.ubj is missing") as e:
        registry.load_model("churn", version="1")
    assert e.value.filename == inside and "guanxi-model-" not in str(e.value)
    with pytest.raises(ModelFilesMissingError) as gone:
        load_version("churn", version="1")
    assert gone.value.missing == inside
    assert str(gone.value).startswith(f"the file {inside} of churn version 1 is missing")
