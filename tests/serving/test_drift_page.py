"""The drift report as a reviewer page and as a file: the same body, escaped, behind a login."""

from __future__ import annotations

import html
import math
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.store import Store
from serving.settings import Settings
from serving.ui.drift import render_report
from tests.serving.conftest import headers, names_said_twice

EVIL = "<script>alert(1)</script>"


def _report() -> dict[str, Any]:
    def row(column: str, psi: float, drifted: bool) -> dict[str, Any]:
        return {
            "column": column,
            "kind": "numeric",
            "n_reference": 100,
            "n_current": 100,
            "missing_reference": 0.0,
            "missing_current": 0.0,
            "bins": 10,
            "psi": psi,
            "psi_p_value": 0.0 if drifted else 0.5,
            "ks": psi,
            "ks_p_value": 0.5,
            "wasserstein": psi,
            "wasserstein_std": psi,
            "drifted": drifted,
            "fired": "psi" if drifted else "",
            "model_input": True,
        }

    return {
        "as_of": "2024-12-31",
        "created": "2024-12-31T06:00:00+00:00",
        "thresholds": {"psi": 0.1, "ks": 0.1, "wasserstein": 0.1, "alpha": 0.01},
        "champions": {"churn": "1"},
        "features": [
            {
                "reference": "2024-08-02",
                "tasks": ["churn"],
                "rows": [row(EVIL, 0.5, True), row("orders_total", 0.01, False)],
            }
        ],
        "scores": [row("churn", 0.02, False)],
        "performance": [
            {
                "task": "churn",
                "as_of": "2024-06-30",
                "outcomes_through": "2024-09-28",
                "version": "1",
                "horizon": 90,
                "rows": 4,
                "metrics": {"roc_auc": 0.75, "precision_top_decile": 1.0, "ece": 0.2375},
                "card": {"roc_auc": 0.8},
                "reliability": [[0.225, 0.5, 2], [0.9, 1.0, 1]],
            }
        ],
        "value": [],
        "summary": {
            "features_compared": 2,
            "features_drifted": 1,
            "drifted_share": 0.5,
            "drifted": [EVIL],
            "scores_drifted": [],
        },
        "notes": [EVIL],
        "run_id": "abc",
    }


def test_the_report_file_escapes_what_it_shows() -> None:
    page = render_report(_report())
    assert EVIL not in page and html.escape(EVIL, quote=False) in page
    assert "<style>" in page and "0.750 (0.800)" in page
    # the file's days read as the pages' do: "Written 2024-12-31T06:00:00+00:00" was an ISO stamp
    assert "<h1>Drift and live performance, 31 Dec 2024</h1>" in page
    assert "Written 31 Dec 2024 06:00 UTC" in page


def test_every_cell_of_the_feature_drift_table_says_something() -> None:
    """ui32: a feature that is no model input, and one no test fired on, had blank cells (a
    screen reader said "blank" where the Drifted column said "no"); the tests that fired read
    "psi,ks", as the CLI's table does not ("psi, ks")."""
    report = _report()
    rows = report["features"][0]["rows"]
    rows[0]["fired"] = "psi,ks"
    rows[1]["model_input"] = False
    page = render_report(report)
    assert "<td></td>" not in page and "<td>psi, ks</td>" in page
    quiet = page.split('data-feature="orders_total"', 1)[1].split("</tr>", 1)[0]
    assert "<td>no</td>" in quiet and quiet.endswith("<td>no</td><td>none</td>")


def test_the_feature_table_lists_the_drifted_first_as_its_chart_does() -> None:
    """light35: the table listed the features by PSI alone, where the chart above it and the
    printed table list the drifted first: a feature KS flagged with a small PSI sat among the
    undrifted ones below."""
    report = _report()
    rows = report["features"][0]["rows"]
    rows[0].update(column="tenure_days", psi=0.02, fired="ks")  # drifted, the smallest PSI
    rows.append({**rows[1], "column": "spend_total", "psi": 0.3})  # undrifted, the largest
    page = render_report(report)
    table = page.split('id="features-0"', 1)[1].split("</table>", 1)[0]
    shown = [cell.split('"', 1)[0] for cell in table.split('data-feature="')[1:]]
    assert shown == ["tenure_days", "spend_total", "orders_total"]
    chart = page.split('id="psi-0"', 1)[1].split("<tbody>", 1)[1]  # the chart's data table
    assert chart.index("tenure_days") < chart.index("spend_total") < chart.index("orders_total")


def test_the_page_shows_the_newest_report_to_reviewers(
    client: TestClient, settings: Settings
) -> None:
    assert "No drift report yet" in client.get("/ui/drift", headers=headers("reviewer")).text
    Store(settings.home).write_record("drift", date(2024, 12, 31), _report())
    assert client.get("/ui/drift", headers=headers("scorer")).status_code == 403
    page = client.get("/ui/drift", headers=headers("reviewer"))
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    text = page.text
    assert EVIL not in text and 'data-feature="orders_total" data-drifted="no"' in text
    assert 'id="psi-0"' in text and 'id="live-0"' in text and 'aria-current="page"' in text
    # the live figures are headed as the model cards name them (models.registry.metric_title)
    assert ">ROC-AUC (card)</th>" in text and ">PR-AUC (card)</th>" in text
    # days and tasks read as on the other pages: "Report of 2024-12-31, written 31 Dec 2024
    # 06:00" mixed two forms on one line, and the tables named tasks by their ids
    assert "Report of 31 Dec 2024, written 31 Dec 2024 06:00 UTC" in text
    assert "Feature drift: 2 Aug 2024 → 31 Dec 2024" in text and "Champions: Churn v1." in text
    assert "the snapshot the Churn champion was tested on" in text
    assert '<tr data-task="churn"><th scope="row">Churn</th>' in text
    assert '<th scope="row">Churn</th><td>30 Jun 2024</td><td>28 Sep 2024</td>' in text
    assert "PSI per feature, 2 Aug 2024 to 31 Dec 2024" in text
    # light36: the score chart was "Score PSI per task, tested-on snapshot to 31 Dec 2024"
    assert (
        "Score PSI per task, from the snapshot each champion was tested on to 31 Dec 2024" in text
    )
    assert "tested-on" not in text
    assert "Churn: live reliability of the scores of 30 Jun 2024" in text
    assert "2024-12-31" not in text.split("<main", 1)[1]
    # ui32b: "Score drift per task" and "Live performance" were a heading, a region and a table
    assert not names_said_twice(text)


def test_an_infinite_distance_is_shown_not_called_missing(
    client: TestClient, settings: Settings
) -> None:
    """light36: the W / sd of a column constant in the reference that moved is infinite; the
    page showed the missing mark (read "not available") beside a "fired" naming the Wasserstein
    distance, and guanxi drift printed "inf". Both write "∞", kept and read back by the store."""
    report = _report()
    report["features"][0]["rows"][1].update(wasserstein_std=math.inf, fired="wasserstein")
    Store(settings.home).write_record("drift", date(2024, 12, 31), report)
    text = client.get("/ui/drift", headers=headers("reviewer")).text
    row = text.split('data-feature="orders_total"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">0.010</td><td class="num">∞</td>' in row


@pytest.mark.parametrize("text", ["", '{"as_of": ', "[]"])
def test_a_report_the_store_cannot_read_is_said_not_a_500(
    client: TestClient, settings: Settings, text: str
) -> None:
    """serve28: a drift record that is not a JSON object (truncated, emptied) made the drift page
    a 500. The page now says the report of that day cannot be read, what to run, and the request
    id the log names the reason with."""
    path = Store(settings.home).record_path("drift", date(2024, 12, 31))
    path.parent.mkdir(parents=True)
    path.write_text(text)
    page = client.get("/ui/drift", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert "The drift report as of 31 Dec 2024 cannot be read" in page.text
    assert "guanxi drift" in page.text and page.headers["x-request-id"] in page.text


def test_a_champion_whose_score_drift_was_not_measured_is_not_said_undrifted() -> None:
    """A champion reading customers-file inputs has no score drift measured when a side lacks
    the customers' attributes (a note says why); the summary said "No task's scores drifted."
    as if it had been measured and found steady."""
    report = _report()
    report["scores"] = []
    page = " ".join(render_report(report).split())
    assert "No task's scores drifted." not in page
    assert "Score drift not measured for Churn (the notes say why)." in page
    report["champions"] = {"churn": "1", "repurchase": "2"}
    report["scores"] = [{**_report()["scores"][0], "column": "repurchase"}]
    page = " ".join(render_report(report).split())
    assert "Score drift not measured for Churn (the notes say why). No other task's scores" in page
    assert "No task's scores drifted." not in page


def test_every_champion_measured_and_steady_reads_as_before() -> None:
    page = " ".join(render_report(_report()).split())
    assert "No task's scores drifted." in page and "not measured" not in page
