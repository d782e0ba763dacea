"""What the commands print besides their own results: no library progress lines."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUANXI = ROOT / ".venv" / "bin" / "guanxi"


@pytest.mark.slow
def test_a_new_home_does_not_print_mlflow_creating_its_tables(tmp_path: Path) -> None:
    """The first command on a new GUANXI_HOME creates the tracking store's tables: MLflow's
    "Creating initial MLflow database tables..." and "Updating database tables" stay off."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    result = subprocess.run(
        [str(GUANXI), "models"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "GUANXI_HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / "mlflow.db").exists()  # the tables were created by this run
    assert "no registered models yet" in result.stdout
    assert result.stderr == ""
    assert "INFO" not in result.stdout
