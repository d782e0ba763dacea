"""``models.definitions``: one reader of a version's task definition, for the gate and the page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from models.definitions import Definition, changes, definition

RULE = ("an order in the last 180 days", '{"no_order": "no order in 180 days"}')


def _version(metadata: dict[str, Any]) -> Any:
    """A model as the reader sees it: its metadata, as training wrote it."""
    return SimpleNamespace(metadata=metadata)


def test_a_versions_definition_is_read_from_its_metadata_else_its_run() -> None:
    """The population's window first, then the params' (older versions), then the run's."""
    meta = {
        "params": {"horizon": 60, "active_days": 365},
        "population": {
            "active_days": 180,
            "eligible": RULE[0],
            "outside": {"no_order": "no order in 180 days"},
        },
    }
    read = definition(_version(meta))
    assert read == Definition(horizon=60, active_days=180, population=RULE)
    assert read.recorded() == {"horizon": 60, "active_days": 180}
    # a version trained before the population was recorded: the params' window
    assert definition(_version({"params": {"horizon": 90, "active_days": 365}})) == Definition(
        90, 365
    )
    # a challenger's card read from its run: MLflow keeps params as text
    assert definition(None, {"horizon": "90", "active_days": "365"}) == Definition(90, 365)
    # the metadata first, the run for what it lacks
    assert definition(
        _version({"params": {"horizon": 30}}), {"horizon": "90", "active_days": "7"}
    ) == (Definition(30, 7))
    # nothing recorded (a version tag's horizon alone, a hand-registered model)
    assert definition(None) == Definition() and definition(_version({})).recorded() == {}
    assert definition(None, {"horizon": "x"}) == Definition()  # unreadable: not recorded


def test_two_definitions_differ_in_what_both_record() -> None:
    ninety = Definition(90, 365)
    assert changes(ninety, ninety) == {}
    assert changes(ninety, Definition(60, 180)) == {"horizon": (90, 60), "active_days": (365, 180)}
    # a population that reads no activity window: the window defines nothing
    assert changes(ninety, Definition(60, 180), window=False) == {"horizon": (90, 60)}
    # a part one of them does not record is no change
    assert changes(ninety, Definition(None, 180)) == {"active_days": (365, 180)}
    # the same recorded population rule (one that does not name the window): it changes nobody
    same = Definition(90, 365, RULE), Definition(90, 180, RULE)
    assert same[0].same_population(same[1])
    assert not Definition(90, 365).same_population(Definition(90, 365))  # none recorded
    assert not same[0].same_population(Definition(90, 365, ("everyone", "null")))
