"""The test run's own set-up: what it takes from the shell that starts it."""

from __future__ import annotations

import os

import pytest

from tests import TEST_SWITCHES, _unset_shell_settings


def test_the_shells_settings_are_unset_and_the_test_switches_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review37: test_target_cli failed under an exported GUANXI_STORE_KEY and test_sample
    under an exported TERMINAL_WIDTH, with the code right; the run now starts without them."""
    shell = {
        "GUANXI_STORE_KEY": "k" * 32,
        "GUANXI_HOME": "/somewhere",
        "GUANXI_TASKS": "churn",
        "TERMINAL_WIDTH": "40",
        "COLUMNS": "40",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
    }
    for name, value in {**shell, **dict.fromkeys(TEST_SWITCHES, "1"), "PATH_X": "x"}.items():
        monkeypatch.setenv(name, value)
    _unset_shell_settings()
    assert not set(shell) & set(os.environ)
    assert set(os.environ) >= TEST_SWITCHES and os.environ["PATH_X"] == "x"
