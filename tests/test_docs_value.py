"""The customer value walk (``docs/value.md``) and the README's value section say what
``guanxi value`` writes, and their commands run in any ``GUANXI_HOME``.

The README's value command read ``.guanxi/sample/events.parquet``: with ``GUANXI_HOME`` set
elsewhere (as the demo's ``--no-serve`` line prints it) the file was not there. The value columns
were listed in the README's prose only, where a column added to the table would go unsaid, and the
terms a CRM analyst meets there (margin, retention, discount rate, horizon) were defined nowhere
in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.clv.customers import DETAIL_COLUMNS, VALUE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
WALK = ROOT / "docs" / "value.md"
DOCS = sorted([README, *(ROOT / "docs").glob("*.md")])
WRITTEN = (*VALUE_COLUMNS, *DETAIL_COLUMNS, "as_of")
"""The columns ``guanxi value`` writes, in order (``pipelines.value`` adds ``as_of`` last)."""

TERMS = (
    "Purchase",
    "Margin",
    "Basis",
    "Horizon",
    "Discount rate",
    "P(alive)",
    "Retention",
    "CLV",
    "Textbook CLV",
    "Customer equity",
    "Churn probability",
    "Equity at risk",
    "Value tier",
    "RFM segment",
)
"""The terms the walk defines, each once, in its Terms section."""


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no section {heading!r}"
    return match[1]


def test_the_walk_lists_every_column_value_writes_in_order() -> None:
    table = _section(WALK.read_text(encoding="utf-8"), "3. Read the table")
    listed = tuple(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    assert listed == WRITTEN


def test_the_readme_lists_every_column_value_writes_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"One row per customer with an order up to `--as-of`: (.*?)\. ", text, re.S)
    assert match, "the README's Customer value section lists the columns"
    listed = tuple(
        name.strip()
        for code in re.findall(r"`([^`]+)`", match[1])
        for name in code.replace("\n", " ").split(",")
    )
    assert listed == WRITTEN


def test_the_walk_defines_each_term_once() -> None:
    terms = _section(WALK.read_text(encoding="utf-8"), "Terms")
    defined = re.findall(r"\*\*([^*]+)\*\*", terms)
    assert sorted(defined) == sorted(TERMS), "each term defined once, in bold"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_command_reads_the_default_store_whatever_guanxi_home_says(path: Path) -> None:
    """A command that reads a file of the store names it ``${GUANXI_HOME:-.guanxi}/...``."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)
    fixed = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if re.search(r"(?<![\w/$:{-])\.guanxi/", line.split("#")[0])
    ]
    assert not fixed, f"{path.name}: reads ./.guanxi/ whatever GUANXI_HOME is: {fixed}"
