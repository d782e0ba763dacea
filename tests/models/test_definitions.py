"""``models.definitions``: one reader of a version's task definition, for the gate and the page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from models.definitions import (
    Definition,
    DefinitionUnreadableError,
    changes,
    definition,
    recorded_int,
)

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
    # an explicit population window of None: the params' (then the run's), as the page read it
    explicit = {"params": {"horizon": 90, "active_days": 365}, "population": {"active_days": None}}
    assert definition(_version(explicit)) == Definition(90, 365)
    assert definition(_version({"population": {"active_days": None}}), {"active_days": "7"}) == (
        Definition(None, 7)
    )


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


def test_an_unreadable_window_is_an_error_unless_the_reader_is_lenient() -> None:
    """An unreadable horizon was counted as not recorded, and the gate passed without
    comparing; the gate sees the error (as before the one reader), the page chooses leniency."""
    with pytest.raises(DefinitionUnreadableError) as raised:
        definition(None, {"horizon": "x"})
    assert str(raised.value) == (
        "horizon (run param horizon) is 'x', not a whole number of days: the task definition "
        "cannot be read"
    )
    with pytest.raises(DefinitionUnreadableError, match=r"activity window \(metadata population"):
        definition(_version({"population": {"active_days": 90.5}}))
    assert definition(None, {"horizon": "x"}, lenient=True) == Definition()
    lenient = definition(_version({"params": {"horizon": "x"}}), {"active_days": "7"}, lenient=True)
    assert lenient == Definition(None, 7)


def test_a_recorded_whole_number_is_read_from_a_number_or_its_text() -> None:
    """One reader for the gate and the page (they differed on 90.0, logged as a float)."""
    for value in (90, 90.0, "90", "90.0", " 90 "):
        assert recorded_int(value) == 90, value
    assert recorded_int(0) == 0 and recorded_int("-3") == -3
    for value in (None, "x", "", 90.5, "90.5", float("nan"), "inf"):
        assert recorded_int(value) is None, value


def test_a_recorded_whole_number_keeps_every_digit_and_is_never_a_bool() -> None:
    """Read through a float, a big seed lost its last digits (two versions' seeds compared on
    the model page as equal), and True read as 1."""
    big = 2**63 - 1  # 9223372036854775807: a float keeps 9223372036854775808
    assert recorded_int(big) == big and recorded_int(str(big)) == big
    assert recorded_int(str(2**53 + 1)) == 2**53 + 1
    assert recorded_int("90.0") == 90 and recorded_int(90.0) == 90  # logged as a float
    for value in (True, False, "True"):
        assert recorded_int(value) is None, value
