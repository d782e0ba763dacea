"""How `guanxi campaign` lays its results out."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from rich.console import Console

from pipelines.campaign import uplift_table


def test_the_uplift_title_is_one_line_at_80_columns() -> None:
    """Rich wrapped the title to the three narrow columns: "retention_email: held-out campaign"
    over "rows (4,563)"."""
    figures = {"qini": 0.1005, "auuc": 0.1288}
    bundle = SimpleNamespace(
        offer="retention_email",
        metadata={"rows": 4563},
        metrics={"x_learner": figures, "two_model": figures, "churn_score": figures},
    )
    console = Console(record=True, width=80)
    console.print(uplift_table(cast(Any, bundle)))
    lines = console.export_text().splitlines()
    assert lines[0].strip() == "retention_email: held-out campaign rows (4,563)"
    assert max(len(line) for line in lines) <= 80 and "…" not in "".join(lines)
    assert any(line.split()[1:4] == ["x_learner", "│", "0.1005"] for line in lines)
