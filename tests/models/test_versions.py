"""``models.versions``: what a version whose files are gone says, and who reads its definition."""

from __future__ import annotations

from models.versions import ModelFilesMissingError

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
    """review L4: ``guanxi drift --alias challenger`` (or a server following the challenger) was
    told to promote another version with --version N, which sets the champion, not the alias
    read: training again makes a new challenger; the registry points the alias elsewhere."""
    assert GONE.of_alias("challenger") == (
        "the challenger's files are missing (looked in /srv/mlartifacts/churn/models/m-3): put "
        "them back there, or train again (`guanxi train --task churn --events PATH --as-of DAY`: "
        "the new version is the challenger), or point the challenger alias at another version "
        "whose files exist in the MLflow registry (`guanxi models` lists them; `guanxi promote` "
        "moves the champion alone)"
    )
    assert "--version N" not in GONE.remedy("challenger")
    assert "--version N" in GONE.remedy("champion")
