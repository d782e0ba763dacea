"""bench.staleness: a figure's path from its imports, and the commits since that touched it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from bench.staleness import (
    FIGURES,
    Figure,
    cli_commands,
    figure_path,
    imported_modules,
    main,
    project_modules,
    staleness,
    table,
)
from tests.test_docs import _anchors

ROOT = Path(__file__).resolve().parents[2]

CLI = """
import importlib
from pipelines.console import quiet
_COMMANDS = (
    ("train", app, "train", "pipelines.job", "train_command"),
    ("data", data_app, "sample", "pipelines.other", "sample_command"),
)
"""

FILES = {
    "README.md": "figures\n",
    "pkg/__init__.py": "",
    "pkg/a.py": (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n    import pkg.c\n"
        "def run():\n    from pkg.sub import d\n    return d\n"
    ),
    "pkg/b.py": "X = 1\n",
    "pkg/c.py": "Y = 1\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/d.py": "import numpy\n",
    "pkg/unused.py": "Z = 1\n",
    "bench/__init__.py": "",
    "bench/x.py": "import subprocess\nfrom pkg.a import run\n",
    "pipelines/__init__.py": "",
    "pipelines/cli.py": CLI,
    "pipelines/console.py": "",
    "pipelines/job.py": "from pkg import b\n",
    "pipelines/other.py": "import pkg.unused\n",
}


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "--short", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    _commit(tmp_path, FILES, "start")
    return tmp_path


def test_imports_relative_inside_functions_and_not_type_checking() -> None:
    found = imported_modules(FILES["pkg/a.py"], "pkg.a", package=False)
    assert {"pkg", "pkg.b", "pkg.sub", "pkg.sub.d", "typing"} <= found
    assert "pkg.c" not in found
    assert imported_modules("from .a import run\n", "pkg", package=True) >= {"pkg.a", "pkg.a.run"}


def test_a_module_attr_string_counts_as_an_import_of_its_module() -> None:
    # as pipelines/serve.py hands uvicorn its app: APP_FACTORY = "serving.app:create_app_from_env"
    source = (
        'APP = "serving.app:create_app_from_env"\n'
        'def serve():\n    uvicorn.run("pkg.sub.d:make.app", factory=True)\n'
        'NOT = ["a sentence: with a colon", "http://host:80", "x:y z", ":attr", "serving.app."]\n'
    )
    found = imported_modules(source, "pipelines.serve", package=False)
    assert found == {"serving.app", "pkg.sub.d"}
    files = {**FILES, "bench/y.py": 'import subprocess\nTARGET = "pkg.c:Y"\n'}
    bench = Figure("bench.y", "0", "now", ("bench.y",))
    assert figure_path(bench, files, files.__getitem__) == [
        "bench/__init__.py",
        "bench/y.py",
        "pkg/__init__.py",
        "pkg/c.py",
    ]


SPECS = {
    "tasks/__init__.py": "",
    "tasks/registry.py": (
        "import importlib\ndef load():\n    importlib.import_module('tasks.specs')\n"
    ),
    "tasks/specs/__init__.py": (
        "import importlib\nimport pkgutil\n"
        "for _m in pkgutil.iter_modules(__path__):\n"
        "    importlib.import_module(f'{__name__}.{_m.name}')\n"
    ),
    "tasks/specs/churn.py": "from pkg import b\n",
    "tasks/specs/xsell.py": "X = 1\n",
    "tasks/specs/deep/__init__.py": "",
    "tasks/specs/deep/more.py": "Y = 1\n",
    "tasks/other.py": "Z = 1\n",
    "bench/t.py": "from tasks.registry import load\n",
}


def test_a_string_naming_a_project_module_counts_as_an_import() -> None:
    # models/tasks.py: importlib.import_module("models.specs"); bench: [python, "-m", "bench.x"]
    source = (
        "import importlib, subprocess, sys\n"
        "def run(name):\n"
        "    importlib.import_module('pkg.c')\n"
        "    subprocess.run([sys.executable, '-m', 'pkg.unused'])\n"
        "    subprocess.run([sys.executable, '-c', 'from pkg.sub import d; d.main()'])\n"
        "    importlib.import_module('.b', package=__package__)\n"
        "    importlib.import_module(name)\n"
        "NOT = ['import this and that', 'pkg/c.py', 'a sentence.', 'from pkg import']\n"
    )
    found = imported_modules(source, "pkg.a", package=False)
    assert {"pkg.c", "pkg.unused", "pkg.sub", "pkg.sub.d", "pkg.b"} <= found
    assert not any("/" in name or " " in name or name.endswith(".") for name in found)
    files = {**FILES, "bench/z.py": source}
    bench = Figure("bench.z", "0", "now", ("bench.z",))
    assert figure_path(bench, files, files.__getitem__) == [  # '.b' is bench.b there: none
        "bench/__init__.py",
        "bench/z.py",
        "pkg/__init__.py",
        "pkg/c.py",
        "pkg/sub/__init__.py",
        "pkg/sub/d.py",
        "pkg/unused.py",
    ]


def test_a_package_importing_its_own_modules_by_name_imports_them_all() -> None:
    # models/specs/__init__.py: pkgutil.iter_modules(__path__) + import_module(f"{__name__}.{n}")
    init = SPECS["tasks/specs/__init__.py"]
    assert imported_modules(init, "tasks.specs", package=True) >= {"tasks.specs.*"}
    built = "import importlib\ndef get(n):\n    return importlib.import_module('tasks.' + n)\n"
    assert "tasks.*" in imported_modules(built, "pkg.a", package=False)
    relative = "import importlib\ndef get(n):\n    return importlib.import_module(f'.{n}', 'pkg')\n"
    assert "pkg.*" in imported_modules(relative, "pkg", package=True)
    deeper = relative.replace("f'.{n}'", "f'.sub.{n}'")
    assert "pkg.sub.*" in imported_modules(deeper, "pkg.a", package=False)
    elsewhere = (
        "import pkgutil\nfrom tasks import specs\nM = list(pkgutil.walk_packages(specs.__path__))\n"
    )
    assert "tasks.specs.*" in imported_modules(elsewhere, "pkg.a", package=False)

    files = {**FILES, **SPECS}
    bench = Figure("bench.t", "0", "now", ("bench.t",))
    assert figure_path(bench, files, files.__getitem__) == [
        "bench/__init__.py",
        "bench/t.py",
        "pkg/__init__.py",
        "pkg/b.py",
        "tasks/__init__.py",
        "tasks/registry.py",
        "tasks/specs/__init__.py",
        "tasks/specs/churn.py",
        "tasks/specs/deep/__init__.py",
        "tasks/specs/deep/more.py",
        "tasks/specs/xsell.py",
    ]


def test_a_change_to_a_module_imported_by_name_makes_the_figure_stale(repo: Path) -> None:
    _commit(repo, SPECS, "task specs imported by name")
    measured = _git(repo, "rev-parse", "--short", "HEAD")
    figures = [Figure("bench.t", measured, "now", ("bench.t",))]
    _commit(repo, {"tasks/other.py": "Z = 2\n"}, "not imported")
    assert staleness(repo, figures=figures)[0].current
    spec = _commit(repo, {"tasks/specs/xsell.py": "X = 2\n"}, "a spec")
    assert [line.split()[0] for line in staleness(repo, figures=figures)[0].commits] == [spec]


def test_a_declared_python_file_is_followed_and_the_cli_table_is_not() -> None:
    # bench.value runs bench/_lifetimes_child.py by path; the CLI imports one job module a run
    files = {**FILES, "bench/child.py": "from pkg import b\n"}
    figure = Figure("bench.x", "0", "now", ("bench.x",), files=("bench/child.py",))
    assert figure_path(figure, files, files.__getitem__) == [
        "bench/__init__.py",
        "bench/child.py",
        "bench/x.py",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/sub/__init__.py",
        "pkg/sub/d.py",
    ]
    alone = Figure("child alone", "0", "now", files=("bench/child.py",))
    assert figure_path(alone, files, files.__getitem__) == [
        "bench/__init__.py",
        "bench/child.py",
        "pkg/__init__.py",
        "pkg/b.py",
    ]
    cli = imported_modules(CLI, "pipelines.cli", package=False)
    assert "pipelines.job" not in cli and "pipelines.other" not in cli
    assert "pipelines.job" in imported_modules(CLI, "pipelines.elsewhere", package=False)


def test_modules_and_cli_commands_are_read_from_the_files() -> None:
    modules = project_modules([*FILES, "docs/not-python.md", "tests/data/bad-name.py"])
    assert modules["pkg"] == "pkg/__init__.py" and modules["pkg.sub.d"] == "pkg/sub/d.py"
    assert "README" not in modules and not any("bad-name" in m for m in modules)
    assert cli_commands(CLI) == {"train": "pipelines.job", "data sample": "pipelines.other"}


def test_a_figures_path_follows_its_imports_and_commands() -> None:
    bench = Figure("bench.x", "0", "now", ("bench.x",))
    assert figure_path(bench, FILES, FILES.__getitem__) == [
        "bench/__init__.py",
        "bench/x.py",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/sub/__init__.py",
        "pkg/sub/d.py",
    ]
    command = Figure("guanxi train", "0", "now", commands=("train",), files=("README.md",))
    assert figure_path(command, FILES, FILES.__getitem__) == [
        "README.md",
        "pipelines/__init__.py",
        "pipelines/cli.py",
        "pipelines/console.py",
        "pipelines/job.py",
        "pkg/__init__.py",
        "pkg/b.py",
    ]
    with pytest.raises(KeyError, match=r"pkg\.gone"):
        figure_path(Figure("gone", "0", "now", ("pkg.gone",)), FILES, FILES.__getitem__)


def test_only_commits_that_touch_the_path_make_a_figure_stale(repo: Path) -> None:
    measured = _git(repo, "rev-parse", "--short", "HEAD")
    figures = [
        Figure("bench.x", measured, "now", ("bench.x",)),
        Figure("guanxi train", measured, "now", commands=("train",)),
        Figure("guanxi data sample", measured, "now", commands=("data sample",)),
    ]
    _commit(repo, {"README.md": "new figures\n", "pkg/c.py": "Y = 2\n"}, "docs; a type only")
    assert [row.current for row in staleness(repo, figures=figures)] == [True, True, True]

    lazy = _commit(repo, {"pkg/sub/d.py": "import numpy as np\n"}, "lazily imported")
    shared = _commit(repo, {"pkg/b.py": "X = 2\n"}, "shared by both")
    rows = staleness(repo, figures=figures)
    assert [[line.split()[0] for line in row.commits] for row in rows] == [
        [shared, lazy],
        [shared],
        [],
    ]
    # the path is read at the revision asked for: before the change, nothing is stale
    assert all(row.current for row in staleness(repo, rev=f"{lazy}~1", figures=figures))
    text = table(rows, "HEAD", shared)
    assert f"**path changed since** (2) | {shared}, {lazy} |" in text
    assert "| guanxi data sample | " in text and text.rstrip().endswith("| current | none |")


def test_check_exits_non_zero_only_when_a_figure_is_stale(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = _git(repo, "rev-parse", "--short", "HEAD")
    figures = (Figure("bench.x", measured, "now", ("bench.x",)),)
    assert main(["--repo", str(repo), "--check"], figures) == 0
    changed = _commit(repo, {"pkg/a.py": FILES["pkg/a.py"] + "W = 0\n"}, "a change")
    assert main(["--repo", str(repo)], figures) == 0
    assert main(["--repo", str(repo), "--check", "--log"], figures) == 1
    out = capsys.readouterr()
    assert f"{changed} a change" in out.out and "stale: bench.x" in out.err
    readme = repo / "README.md"
    readme.write_text("before\n<!-- staleness:start -->\nold\n<!-- staleness:end -->\nafter\n")
    assert main(["--repo", str(repo), "--write", str(readme)], figures) == 0
    written = readme.read_text()
    assert "old" not in written and written.startswith("before\n<!-- staleness:start -->\nAgainst")
    assert written.endswith(f"{changed} |\n<!-- staleness:end -->\nafter\n")


def _repo_files() -> list[str]:
    tops = ("bench", "features", "models", "pipelines", "serving", "training", "tests")
    return [p.relative_to(ROOT).as_posix() for top in tops for p in (ROOT / top).rglob("*.py")]


def test_the_training_figures_run_every_task_spec() -> None:
    # models/tasks.py imports models.specs by name; models/specs/ imports its modules by name
    files = _repo_files()
    train = next(figure for figure in FIGURES if figure.name == "bench.train")
    path = figure_path(train, files, lambda name: (ROOT / name).read_text())
    specs = sorted(name for name in files if name.startswith("models/specs/"))
    assert "models/specs/churn.py" in specs and set(specs) <= set(path)


def test_the_training_figures_do_not_run_the_server_or_the_drift_report() -> None:
    """coord27: guanxi promote took ModelFilesMissingError from pipelines.drift, which imports the
    reviewer pages; every serving module came into guanxi train's imports (train promotes), so
    a change to a page made the training figures stale. Loading versions is models.versions
    (pipelines.versions until qa49 M2: the server loads its champions through it too)."""
    files = _repo_files()
    for name in ("bench.train", "bench.train_scale, 1M", "bench.explain"):
        figure = next(f for f in FIGURES if f.name == name)
        path = figure_path(figure, files, lambda name: (ROOT / name).read_text())
        assert "pipelines/promote.py" in path and "models/versions.py" in path, name
        served = [p for p in path if p.startswith("serving/")]
        # serving.days: the day's sentences pipelines.days shares with POST /v1/score (qa47 L5)
        assert served == ["serving/__init__.py", "serving/days.py", "serving/settings.py"], (
            name,
            served,
        )
        assert "pipelines/drift.py" not in path, name


def test_the_drift_figures_path_holds_the_drift_report_and_what_it_reads() -> None:
    """drift42: the README's drift figures were re-checked by hand after every re-measure, with
    no record here to say when their code changed. Their run trains, promotes and scores a churn
    model before ``guanxi drift``; the report's page and its figures are in the path."""
    files = _repo_files()
    drift = next(f for f in FIGURES if f.name.startswith("the drift figures"))
    assert drift.where == "HISTORY.md#the-drift-figures-readme-drift-and-live-performance"
    path = figure_path(drift, files, lambda name: (ROOT / name).read_text())
    for name in ("drift", "sample", "train", "promote", "score"):
        assert f"pipelines/{name}.py" in path, name
    assert {"models/drift.py", "models/performance.py", "serving/ui/drift.py"} <= set(path)
    assert "pipelines/cycle.py" not in path and "pipelines/demo.py" not in path


def test_every_declared_figure_names_modules_and_commands_that_exist() -> None:
    files = _repo_files()
    imports: dict[str, set[str]] = {}
    for figure in FIGURES:
        path = figure_path(figure, files, lambda name: (ROOT / name).read_text(), imports)
        assert all((ROOT / name).exists() for name in path), figure.name
        assert len(figure.commit) >= 7 and figure.where, figure.name


def test_a_figure_links_to_its_section_here_or_in_the_history(repo: Path) -> None:
    measured = _git(repo, "rev-parse", "--short", "HEAD")
    figures = [
        Figure("bench.x", measured, "now", ("bench.x",), where="HISTORY.md#bench-x"),
        Figure("guanxi train", measured, "now", commands=("train",), where="guanxi-train"),
    ]
    text = table(staleness(repo, figures=figures), "HEAD", measured)
    assert "| [bench.x](HISTORY.md#bench-x) | " in text
    assert "| [guanxi train](#guanxi-train) | " in text


BENCH = ROOT / "bench"
NUMBER = re.compile(r"\d(?:[\d,.]*\d)?")


def _section(where: str) -> str:
    """The text of the section a record's ``where`` names: its heading to the next heading of
    the same level or above, in bench/HISTORY.md (``HISTORY.md#...``) or bench/README.md."""
    name, _, anchor = where.rpartition("#")
    lines = (BENCH / (name or "README.md")).read_text(encoding="utf-8").splitlines(keepends=True)
    level = 0
    found: list[str] = []
    for line in lines:
        heading = re.match(r"(#{1,6}) ", line)
        if heading and level and len(heading[1]) <= level:
            break
        if heading and not level and anchor in _anchors(line):
            level = len(heading[1])
        if level:
            found.append(line)
    return "".join(found)


def test_every_figure_links_to_a_section_that_exists() -> None:
    for figure in FIGURES:
        name = figure.where.rpartition("#")[0]
        assert name in ("", "HISTORY.md") and _section(figure.where), figure.name


def test_the_current_figures_follow_the_records() -> None:
    """bench/README.md's "Current figures" has one row per record, in order, with its link,
    commit and time; every number of its figure is one of the linked section's."""
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    part = readme.split("\n## Current figures\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in part.splitlines() if line.startswith("| [")]
    assert len(rows) == len(FIGURES)
    for figure, row in zip(FIGURES, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[0] == f"[{figure.name}]({figure.where})", row
        assert cells[-1] == f"{figure.commit}, {figure.measured}", figure.name
        stated = set(NUMBER.findall(_section(figure.where)))
        unknown = [n for n in NUMBER.findall(cells[-2]) if n not in stated]
        assert not unknown, f"{figure.name}: {unknown} are not in its section"
