"""``models.versions``: what a version whose files are gone says, and who reads its definition."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from models import registry
from models.versions import ModelFilesMissingError, load_version

GONE = ModelFilesMissingError("churn", "3", "/srv/mlartifacts/churn/models/m-3")


def test_a_champion_whose_files_are_gone_is_told_what_works() -> None:
    """qa43 M2, the server log's half: the log (and guanxi drift, guanxi cycle) advised a plain
    `guanxi promote --task churn`, which refuses while the lost version is still the champion
    ("Version 3 is already the churn champion"). It now names what works, in the sentence
    /readyz, the 503s and not_served give: another version (--version N), or training again."""
    assert GONE.of_alias("champion") == (
        "the champion's files are missing (looked in /srv/mlartifacts/churn/models/m-3): put "
        "them back there, or promote another version whose files exist (`guanxi promote --task "
        "churn --version N`), or train again (`guanxi train --task churn --events PATH --as-of "
        "DAY`, then `guanxi promote --task churn`)"
    )
    one = ModelFilesMissingError("churn", "3", "/srv/m-3", "/srv/m-3/bundle.json")
    assert one.of_alias("champion").startswith(
        "the champion's file /srv/m-3/bundle.json is missing (looked in /srv/m-3): put them back"
    )
    assert GONE.of_alias("champion").endswith(GONE.remedy("champion"))


def test_another_alias_whose_files_are_gone_is_told_what_moves_that_alias() -> None:
    """A server following ``GUANXI_MODEL_ALIAS=challenger`` was told to promote another version
    with --version N, which sets the champion, not the alias read. Training again makes a new
    challenger (for the challenger alone); MLflow's alias setting points the alias elsewhere;
    the server may follow the champion instead."""
    assert GONE.of_alias("challenger") == (
        "the challenger's files are missing (looked in /srv/mlartifacts/churn/models/m-3): put "
        "them back there, or train again (`guanxi train --task churn --events PATH --as-of DAY`: "
        "the new version is the challenger), or point the challenger alias at another version "
        "whose files exist (`MlflowClient().set_registered_model_alias('churn', 'challenger', "
        "N)` or the MLflow UI; `guanxi models` lists the versions), or serve the champion "
        "(`GUANXI_MODEL_ALIAS=champion`)"
    )
    assert "--version N" not in GONE.remedy("challenger")
    assert "--version N" in GONE.remedy("champion")


def test_an_alias_training_does_not_move_is_told_to_set_it_or_serve_the_champion() -> None:
    """A third alias (``staging``) was told to train again, as the challenger is: a new version
    is the challenger, never staging. Only MLflow's alias setting moves it."""
    assert GONE.remedy("staging") == (
        "put them back there, or point the staging alias at another version whose files exist "
        "(`MlflowClient().set_registered_model_alias('churn', 'staging', N)` or the MLflow UI; "
        "`guanxi models` lists the versions), or serve the champion "
        "(`GUANXI_MODEL_ALIAS=champion`)"
    )
    assert "train" not in GONE.remedy("staging")


def test_a_registry_that_does_not_answer_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """qa44 M2: a load whose registry look failed on the connection (a hung MLflow server:
    20 s x 3 attempts) asked the registry again, only to name a version whose files are gone,
    and waited as long once more before failing. A connection or timeout failure is not files
    gone: the failure is raised as it is, after one look."""
    calls: list[tuple[str, str]] = []
    hung = (
        "API request to http://127.0.0.1:5000/api/2.0/mlflow/registered-models/alias failed "
        "with timeout exception HTTPConnectionPool(host='127.0.0.1', port=5000): Read timed out."
    )

    def unanswered(task: str, alias: str) -> None:
        calls.append((task, alias))
        raise MlflowException(hung)

    monkeypatch.setattr(registry, "get_version", unanswered)
    with pytest.raises(MlflowException, match="timeout exception"):
        load_version("churn", alias="champion")
    assert calls == [("churn", "champion")]
