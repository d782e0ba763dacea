"""The README's main job, `guanxi demo`, runs the whole cycle (the server part is tested apart)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.store import Store
from models import registry
from models.tasks import task_names
from pipelines.cli import _register, app
from pipelines.demo import DEMO_AS_OF
from serving.settings import get_settings


@pytest.mark.slow
def test_demo_trains_promotes_and_stores_scores(local_tracking: Path) -> None:
    _register()
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["demo", "--no-serve", "--customers", "2000", "--trials", "2"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    store = Store(local_tracking)
    assert store.latest_as_of() == DEMO_AS_OF
    for task in task_names():
        champion = registry.get_version(task, registry.CHAMPION)
        assert champion is not None, f"{task} has no champion"
        scores = store.read_scores(task, DEMO_AS_OF, str(champion.version))
        assert scores is not None and scores.height > 0
        assert f"{task}: grade" in result.output
