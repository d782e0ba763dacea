"""`guanxi promote` against a local SQLite tracking store (training stubbed, as in
``test_train_cli.py``): a champion whose files are gone, and ``--version`` (rollback)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from models import registry
from models.artifact import ModelBundle
from pipelines.cli import app
from tests.pipelines.test_train_cli import _result, _train, cli, sample  # noqa: F401  (fixtures)


def _files(version: str) -> Path:
    uri = MlflowClient().get_model_version_download_uri("churn", version)
    return Path(uri.removeprefix("file://"))


def _said(result: Any) -> str:
    return " ".join(result.output.split())


@pytest.mark.parametrize("gone", ["all", "bundle.json"])
def test_a_champion_whose_files_are_gone_is_replaced_on_the_grade(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    train_churn: Callable[[], None],
    gone: str,
) -> None:
    """promote27: promote loaded the champion to compare and ended in MLflow's traceback (files
    moved away) or "records no booster digest" (bundle.json alone gone); the README's way out
    was dropping the alias by hand. A champion that cannot be loaded can be neither compared
    against nor served: promote says so and the grade decides."""
    files = _files("1")
    if gone == "all":
        files.rename(tmp_path / "moved")
        missing = f"the files of churn version 1 are missing (looked in {files})"
    else:
        (meta,) = files.rglob("bundle.json")
        meta.unlink()
        name = meta.relative_to(files).as_posix()
        missing = f"the file {name} of churn version 1 is missing (looked in {files})"
    train_churn()
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    said = _said(result)
    assert result.exit_code == 0, said
    assert (
        f"champion version 1 cannot be compared against, nor served: {missing}; the grade decides"
        in said
    )
    assert "promoted churn@champion: grade B passes and there is no comparable champion" in said
    assert "Traceback" not in said and "INFO" not in said
    now = registry.get_version("churn", registry.CHAMPION)
    assert now is not None and str(now.version) == "2"


def test_a_failing_challenger_is_not_promoted_over_a_champion_whose_files_are_gone(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """The grade still decides: a failing challenger stays one."""
    _files("1").rename(tmp_path / "moved")
    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "C"))
    result = cli.invoke(app, ["promote", "--task", "churn"])
    assert result.exit_code == 1 and "grade 'C' does not pass" in _said(result)
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"


def test_version_makes_a_chosen_version_champion_and_says_how_to_go_back(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """promote27: no command pointed the champion at a chosen version (rollback). `--version N`
    does, without the gate (a grade-C version too: the operator's choice), once the version
    exists and loads with its integrity check; it says the previous champion's version."""
    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "C"))
    promote = ["promote", "--task", "churn", "--version"]
    result = cli.invoke(app, [*promote, "2"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    assert _said(result) == (
        "promoted churn@champion: version 2, chosen with --version (no gate); the champion was "
        "version 1; to go back: `guanxi promote --task churn --version 1`"
    )
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "2"
    result = cli.invoke(app, [*promote, "1"])
    assert result.exit_code == 0 and "the champion was version 2" in _said(result)
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"
    result = cli.invoke(app, [*promote, "1"])
    assert result.exit_code == 0 and _said(result) == "version 1 is already the churn champion"

    # refused, the champion where it was: a version that does not exist, whose booster is not
    # the one pinned at registration, or whose files are gone
    result = cli.invoke(app, [*promote, "9"])
    assert result.exit_code == 1, result.output
    assert _said(result) == "not promoted: no registered model version churn/9"
    client = MlflowClient()
    pinned = registry.get_version("churn", registry.CHALLENGER).tags[registry.BOOSTER_DIGEST_TAG]
    client.set_model_version_tag("churn", "2", registry.BOOSTER_DIGEST_TAG, "0" * 64)
    result = cli.invoke(app, [*promote, "2"])
    assert result.exit_code == 1, result.output
    assert "the booster digest differs from the one pinned at registration" in _said(result)
    client.set_model_version_tag("churn", "2", registry.BOOSTER_DIGEST_TAG, pinned)
    files = _files("2")
    files.rename(tmp_path / "moved")
    result = cli.invoke(app, [*promote, "2"], env={"COLUMNS": "1000"})
    assert result.exit_code == 1, result.output
    assert _said(result) == (
        f"not promoted: the files of churn version 2 are missing (looked in {files})"
    )
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"
    assert cli.invoke(app, [*promote, "0"]).exit_code == 2  # versions start at 1


def test_a_champion_or_challenger_whose_booster_is_not_the_pinned_one_is_said_not_raised(
    cli: CliRunner,  # noqa: F811
    challenger: None,
) -> None:
    """coord27: a champion whose booster digest is not the one pinned at registration ended the
    gated promote in ModelIntegrityError's traceback. The server refuses it too, so it is said
    and the grade decides; a challenger refused so is "not promoted" (exit 1), the champion kept."""
    client = MlflowClient()
    digest = registry.BOOSTER_DIGEST_TAG
    pinned = registry.get_version("churn", registry.CHALLENGER).tags[digest]

    client.set_model_version_tag("churn", "2", digest, "0" * 64)
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    assert result.exit_code == 1, result.output
    said = _said(result)
    assert said.startswith("not promoted: models:/churn/2: the booster digest differs"), said
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"

    client.set_model_version_tag("churn", "2", digest, pinned)
    client.set_model_version_tag("churn", "1", digest, "0" * 64)
    result = cli.invoke(app, ["promote", "--task", "churn"], env={"COLUMNS": "1000"})
    said = _said(result)
    assert result.exit_code == 0, said
    assert (
        "champion version 1 cannot be compared against, nor served: models:/churn/1: the booster "
        "digest differs from the one pinned at registration; refused; the grade decides" in said
    )
    assert "Traceback" not in said
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "2"


def test_a_rollback_records_who_why_when_and_from_which_version_and_a_failed_move_none(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """rollback29: nothing recorded who rolled back or why; `--reason` and `--by` (default the OS
    user) are recorded on the version with the time and the previous champion. The record is
    written before the alias moves and undone when the move fails: no record of a rollback
    that did not happen."""
    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "C"))
    promote = ["promote", "--task", "churn", "--version"]

    def refused(*args: Any) -> None:
        raise MlflowException("registry unavailable")

    with monkeypatch.context() as failing:
        failing.setattr(MlflowClient, "set_registered_model_alias", refused)
        result = cli.invoke(app, [*promote, "2", "--reason", "bad AUC", "--by", "ana"])
    assert result.exit_code == 1, result.output
    assert _said(result) == "not promoted: registry unavailable"
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"
    assert registry.ROLLBACK_TAG not in MlflowClient().get_model_version("churn", "2").tags

    result = cli.invoke(app, [*promote, "2", "--reason", "v1 drifted", "--by", "ana"])
    assert result.exit_code == 0, result.output
    record = registry.rollback_record(registry.get_version("churn", registry.CHAMPION))
    assert record is not None
    assert {k: record[k] for k in ("by", "reason", "from")} == {
        "by": "ana",
        "reason": "v1 drifted",
        "from": "1",
    }
    assert datetime.fromisoformat(record["at"]).utcoffset() == timedelta(0)
    monkeypatch.setattr(getpass, "getuser", lambda: "ops")
    assert cli.invoke(app, [*promote, "1"]).exit_code == 0
    record = registry.rollback_record(registry.get_version("churn", registry.CHAMPION))
    assert record is not None and (record["by"], record["reason"], record["from"]) == (
        "ops",
        "",
        "2",
    )


def test_the_listing_and_the_model_cards_say_a_champion_came_from_a_rollback(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """rollback29: `guanxi models` and the model page could not tell a rollback from a
    promotion. Both say "rolled back to vN by X on DATE: reason" for a champion from a rollback
    (the page's card too when it was built, and cached, before the rollback); a gated promotion
    onto a version that kept an earlier rollback's record is not called a rollback."""
    from serving.ui.cards import CardCache, load_cards

    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "C"))
    cache = CardCache()
    assert load_cards("churn", None, cache).champion.rollback is None  # type: ignore[union-attr]
    promote = ["promote", "--task", "churn", "--version"]
    assert cli.invoke(app, [*promote, "2", "--reason", "v1 drifted", "--by", "ana"]).exit_code == 0
    day = datetime.now(UTC).date().isoformat()
    said = f"rolled back to v2 by ana on {day}: v1 drifted"
    listing = cli.invoke(app, ["models", "--task", "churn"], env={"COLUMNS": "80"})
    assert listing.exit_code == 0, listing.output
    assert f"churn@champion: {said}" in _said(listing)
    cards = load_cards("churn", None, cache)
    assert cards.champion is not None and cards.champion.rollback == said

    # back to v1 (no reason), then v2 promoted through the gate: its old record is dropped
    assert cli.invoke(app, [*promote, "1", "--by", "ana"]).exit_code == 0
    assert load_cards("churn", None, cache).champion.rollback == (  # type: ignore[union-attr]
        f"rolled back to v1 by ana on {day}"
    )
    registry.set_champion("churn", "2")
    assert "rolled back" not in _said(cli.invoke(app, ["models", "--task", "churn"]))
    assert load_cards("churn", None, cache).champion.rollback is None  # type: ignore[union-attr]


def test_a_rollback_whose_record_cannot_be_undone_says_so(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """rollback29: when the alias move fails and removing the record written before it fails
    too, the refusal says the version keeps a record of a rollback that did not happen. A
    --reason or --by without --version (a gated promotion records nothing) is refused."""
    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "C"))

    def refused(*args: Any) -> None:
        raise MlflowException("registry unavailable")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", refused)
    monkeypatch.setattr(MlflowClient, "delete_model_version_tag", refused)
    args = ["promote", "--task", "churn", "--version", "2", "--reason", "x"]
    result = cli.invoke(app, args, env={"COLUMNS": "1000"})
    assert result.exit_code == 1, result.output
    assert _said(result) == (
        "not promoted: registry unavailable; churn version 2 keeps a rollback record (tag "
        "rollback) for this rollback that did not happen; removing it failed: registry unavailable"
    )
    assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"
    result = cli.invoke(app, ["promote", "--task", "churn", "--reason", "x"])
    assert result.exit_code == 2 and "give --version too" in _said(result)


def test_the_listing_marks_what_a_version_lacks_as_the_other_tables_do(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """heavy35: `guanxi models` wrote "-" for a version with no alias, no grade or no figure,
    which reads as a minus sign, where the drift, cycle, value, plan and campaign tables write
    "—" (features.contracts.MISSING, as the other tables write it)."""
    from features.contracts import MISSING

    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "C"))
    client = MlflowClient()
    client.delete_registered_model_alias("churn", registry.CHALLENGER)
    for tag in ("grade", "rule_roc_auc"):
        client.delete_model_version_tag("churn", "1", tag)
    listing = cli.invoke(app, ["models", "--task", "churn"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    (row,) = [
        line.split() for line in listing.output.splitlines() if line.split()[:2] == ["churn", "1"]
    ]
    # task, version, aliases, grade, the two model figures, the rule's, the run
    assert row[2:4] == [MISSING, MISSING] and row[6] == MISSING, listing.output
    assert "-" not in row[2:7], listing.output


def test_the_champion_reads_a_category_the_holdout_rows_lack_as_it_is_served() -> None:
    """review54 L4: the gate scored the champion with NaN for a category the challenger's
    held-out rows have no column of, while every reader serving it reads 0 orders (a 0 share,
    null without spend): the rows were built with every category ordered up to then."""
    import numpy as np
    import pandas as pd

    from pipelines.promote import champion_rows

    names = ["orders_total", "cat_toys_orders", "cat_toys_share", "recency_days"]
    rows = pd.DataFrame(
        {"customer_id": ["a", "b"], "orders_total": [2.0, 0.0], "spend_total": [9.0, 0.0]}
    )
    got = champion_rows(rows, names)
    assert list(got.columns) == sorted({*rows.columns, *names})
    assert got["cat_toys_orders"].tolist() == [0.0, 0.0]
    assert got["cat_toys_share"].iloc[0] == 0.0 and np.isnan(got["cat_toys_share"].iloc[1])
    assert got["recency_days"].isna().all()  # any other input lacking is missing
    # without spend_total among the rows the share stays missing
    bare = champion_rows(rows.drop(columns="spend_total"), names)
    assert bare["cat_toys_orders"].tolist() == [0.0, 0.0] and bare["cat_toys_share"].isna().all()
