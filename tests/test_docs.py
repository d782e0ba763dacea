"""The README shows the contract and the feature registry as they are declared in code.

Run with ``GUANXI_UPDATE_DOCS=1`` to rewrite the generated parts of the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from features.contracts import contract_markdown, feature_table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize(
    ("marker", "render"), [("contract", contract_markdown), ("features", feature_table_markdown)]
)
def test_readme_section_is_generated_from_code(marker: str, render: Callable[[], str]) -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- {marker}:start -->\n)(.*?)(<!-- {marker}:end -->)", re.S)
    match = pattern.search(text)
    assert match, f"README.md has no <!-- {marker}:start/end --> section"
    if os.environ.get("GUANXI_UPDATE_DOCS") == "1":
        README.write_text(pattern.sub(lambda m: m[1] + render() + m[3], text), encoding="utf-8")
        return
    assert match[2] == render(), (
        "README is out of date: run GUANXI_UPDATE_DOCS=1 pytest tests/test_docs.py"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    """``.ci/run`` runs the README's test command, options included (``--durations``...)."""
    readme = README.read_text(encoding="utf-8")
    shown = [line for line in readme.splitlines() if line.startswith("bash tests/install.sh && ")]
    assert len(shown) == 1, "the README shows one test command"
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == shown[0]
