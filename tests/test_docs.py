"""The README shows the contract and the feature registry as they are declared in code.

Run with ``GUANXI_UPDATE_DOCS=1`` to rewrite the generated parts of the README.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from features.contracts import (
    OPTIONAL_OUTCOME_COLUMNS,
    OUTCOME_COLUMNS,
    contract_markdown,
    feature_table_markdown,
)
from models.targeting import PLAN_COLUMNS
from serving.app import create_app
from serving.audit import AuditRecord
from serving.settings import Settings
from tests.pipelines.test_readme_cli import OPTION, OTHER_TOOLS, _options, _resolve, _root

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_markdown() -> str:
    """The README's table of settings: each ``GUANXI_*`` variable, its default and what it does.

    Returns
    -------
    str
        A Markdown table, one row per field of :class:`serving.settings.Settings`.
    """
    shown = {None: "unset", True: "`true`", False: "`false`"}
    rows = ["| variable | default | what |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if field.default_factory is not None:  # the API keys (none), the tasks (every one)
            made = field.default_factory()  # type: ignore[call-arg]
            # the tasks are read as JSON (GUANXI_TASKS='["churn"]') or comma-separated
            text = f"`{json.dumps(list(made))}`" if made else "none"
        elif default is PydanticUndefined:
            text = "none"
        elif isinstance(default, SecretStr):
            text = "none" if not default.get_secret_value() else "set"
        elif isinstance(default, bool) or default is None:
            text = shown[default]
        else:
            text = f"`{default}`"
        rows.append(f"| `GUANXI_{name.upper()}` | {text} | {field.description or ''} |")
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    ("marker", "render"),
    [
        ("contract", contract_markdown),
        ("features", feature_table_markdown),
        ("settings", settings_markdown),
    ],
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


ROOT = README.parent
MARKDOWN = sorted([README, *(ROOT / "docs").rglob("*.md"), *(ROOT / "bench").glob("*.md")])
"""The documents whose links are checked: the README, docs/ and bench/'s README and history."""

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)\)")


def _anchors(text: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, punctuation but ``-`` and
    ``_`` dropped, spaces to ``-``; a repeated one gets ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _FENCE.sub("", text), re.M):
        shown = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", shown.strip().lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_its_file_and_heading(path: Path) -> None:
    """A link to another file, or to a section (``file.md#anchor``, ``#anchor``), lands on it."""
    broken = []
    for target in _LINK.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        name, _, anchor = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.exists() or (
            anchor
            and linked.suffix == ".md"
            and anchor not in _anchors(linked.read_text(encoding="utf-8"))
        ):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: links to nothing: {broken}"


EXAMPLES = sorted((ROOT / "docs" / "examples").iterdir())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_says_which_command_uses_it_with_options_it_has(path: Path) -> None:
    """An example's opening comment names, in backticks, the ``guanxi`` command that uses it, and
    each command it names exists with its options: ``offers.yaml`` said only that
    ``models/offers.py`` reads it, not that ``guanxi target --offers`` plans with it."""
    opening = "\n".join(
        line for line in path.read_text(encoding="utf-8").splitlines()[:12] if line[:1] == "#"
    )
    named = re.findall(r"`(guanxi [^`]+)`", opening)
    assert named, f"{path.name}: its opening comment names no `guanxi ...` command"
    for command in named:
        resolved, rest, name = _resolve(_root(), shlex.split(command)[1:])
        unknown = [w for w in rest if w.startswith("--") and w not in _options(resolved)]
        assert not unknown, f"{path.name}: `{name}` has no option {', '.join(unknown)}"


def _listed(text: str, start: str, end: str) -> list[str]:
    """The column names in backticks (``a``, ``b, c``) between ``start`` and ``end``."""
    part = text.split(start, 1)[1].split(end, 1)[0]
    return [name.strip() for code in re.findall(r"`([^`]+)`", part) for name in code.split(",")]


def test_the_readme_names_the_outcome_and_plan_columns_the_code_declares() -> None:
    """The README listed the outcomes' optional columns as ``margin, segment, churn_probability,
    campaign``: ``value_tier`` and ``propensity`` (which a cross-sell rate is measured against)
    went unsaid. The lists are the declarations'."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    outcomes = _listed(text, "`guanxi campaign record` validates outcomes (", "; an empty")
    required = list(OUTCOME_COLUMNS)
    assert outcomes[: len(required)] == required
    assert set(outcomes[len(required) :]) == set(OPTIONAL_OUTCOME_COLUMNS)
    assert _listed(text, "`plan.csv` has ", ";") == list(PLAN_COLUMNS)


def test_the_readme_lists_the_audit_line_s_fields() -> None:
    """sec32: no document said what an audit line holds, so an auditor reading the log (and
    ``key_fingerprint``, new) had the code to go by; the README's list is the record's fields."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    listed = _listed(text, "An audit line (JSON) has ", ":")
    assert listed == [f.name for f in dataclasses.fields(AuditRecord)] + ["mac"]


def test_the_readme_s_proxy_strips_the_prefix_guanxi_serve_is_given() -> None:
    """web32b: the README named the path prefix (the ASGI ``root_path``) without the option that
    sets it nor whether the proxy strips it; uvicorn puts ``--root-path`` before every path it
    receives, so a proxy passing ``/crm/ui`` on unstripped reached ``/crm/crm/ui``, a 404. The
    nginx location shown is the prefix ``guanxi serve --root-path`` is given, and its
    ``proxy_pass`` ends in ``/``, which strips it."""
    text = README.read_text(encoding="utf-8")
    [block] = re.findall(r"^```nginx\n(.*?)^```", text, re.S | re.M)
    location = re.search(r"^location (\S+) \{", block, re.M)
    upstream = re.search(r"^\s+proxy_pass (http://[^/\s]+)(\S*);", block, re.M)
    assert location and upstream, block
    [root] = set(re.findall(r"`guanxi serve [^`]*--root-path (\S+)[^`]*`", text))
    assert location[1] == f"{root}/" and upstream[2] == "/", block


def test_the_readme_endpoint_table_is_the_api_document() -> None:
    """Each operation of the served API document is a row of the README's endpoint table, and
    each row's method, path and query parameters are an operation's (``{id}`` for the
    document's ``{customer_id}``); ``/docs`` and ``/redoc``, which show the document, are not in
    it."""
    with tempfile.TemporaryDirectory() as home:
        document = create_app(Settings(home=Path(home), dev=True)).openapi()
    operations = {
        (method.upper(), path.replace("{customer_id}", "{id}")): {
            p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"
        }
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    rows = re.findall(
        r"^\| `(GET|POST) ([^`]+)`((?:, `/[^`]+`)*) \|", README.read_text(encoding="utf-8"), re.M
    )
    shown: dict[tuple[str, str], set[str]] = {}
    for method, first, more in rows:
        for target in [first, *re.findall(r"`([^`]+)`", more)]:
            path, _, query = target.partition("?")
            shown[(method, path)] = {pair.split("=")[0] for pair in query.split("&") if pair}
    pages = {("GET", "/docs"), ("GET", "/redoc")}  # served beside the document, not in it
    assert set(shown) - pages == set(operations)
    for key, names in shown.items():
        assert names <= operations.get(key, set()), f"{key}: no query parameter {names}"


def test_the_readme_shows_every_command() -> None:
    """Each command of ``guanxi --help`` (``guanxi campaign uplift``, ``guanxi audit verify``...)
    is shown in the README, in a code block or inline."""
    text = " ".join(README.read_text(encoding="utf-8").split())

    def commands(group: Any, words: tuple[str, ...]) -> list[tuple[str, ...]]:
        if not hasattr(group, "commands"):
            return [words]
        return [c for name, sub in group.commands.items() for c in commands(sub, (*words, name))]

    missing = [
        " ".join(("guanxi", *words))
        for words in commands(_root(), ())
        if f"guanxi {' '.join(words)}" not in text
    ]
    assert not missing, f"the README never shows {missing}"


@pytest.mark.parametrize("path", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_options_named_in_a_doc_s_prose_are_guanxi_s(path: Path) -> None:
    """An option a document names in its text (`` `--horizon-days` ``) is an option of one of
    guanxi's commands; the README's are checked against its sections' commands
    (``tests/pipelines/test_readme_cli.py``)."""

    def options(group: Any) -> set[str]:
        found = _options(group)
        for sub in getattr(group, "commands", {}).values():
            found |= options(sub)
        return found

    known = options(_root())
    prose = _FENCE.sub("", path.read_text(encoding="utf-8"))
    unknown = {
        option
        for line in prose.splitlines()
        if not any(tool in line for tool in OTHER_TOOLS)
        for code in re.findall(r"`([^`]+)`", line)
        for option in OPTION.findall(code)
        if option not in known
    }
    assert not unknown, f"{path.name} names options no guanxi command has: {sorted(unknown)}"
