"""Which README and bench/README figures were measured on code that changed since.

    python -m bench.staleness [--check] [--log] [--files] [--write bench/README.md]
                              [--rev HEAD] [--repo .]

Each figure the READMEs publish is declared once below (:data:`FIGURES`): the commit its latest
run was measured on, when, and what its timed path runs. The path is derived, not listed: the
bench module (or the modules a hand-run figure starts from), every project module they import,
transitively, at ``--rev`` (imports inside functions included, ``if TYPE_CHECKING:`` blocks
left out), and for each ``guanxi`` command the figure's run starts as a subprocess, the job
module ``pipelines/cli.py``'s command table names for it and what that imports. Imports by name
at run time count too, conservatively: a string literal that is exactly a project module's name
(``importlib.import_module("models.specs")``, ``python -m bench.sources``) or of the form
``"package.module:attr"`` (as handed to uvicorn) imports that module; a name built at run time
(``import_module(f"{__name__}.{name}")``) imports every module its fixed start could name; a
package scanning a ``__path__`` (``pkgutil.iter_modules``, ``walk_packages``) imports every
module under it; Python code in a string (``python -c "from pipelines.cli import main"``)
imports what it imports; and a declared ``.py`` file's imports are followed like a module's.
Prints one row per figure with ``git log --oneline <commit>..<rev> -- <path>``: empty is
"current", anything else "path changed since". A commit in that list changed a file the
figure's run imports, not always the timed lines; read the commits before calling a figure wrong.

``--check`` exits with 1 when any figure's path changed since (for the end-of-session routine;
not a test: every code change would fail it). ``--log`` lists each stale figure's commits with
their subjects, ``--files`` each figure's path; ``--write bench/README.md`` puts the table
between the ``<!-- staleness:start -->`` and ``<!-- staleness:end -->`` lines there.

When a figure is re-measured, change its record's ``commit``, ``measured`` and ``where`` (the
section of bench/HISTORY.md with the new run) here in the same commit as the README, its row of
bench/README.md's "Current figures" and the table ``--write`` rewrites.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FIGURES",
    "Figure",
    "Staleness",
    "cli_commands",
    "figure_path",
    "imported_modules",
    "main",
    "project_modules",
    "staleness",
    "write_between_markers",
]

_IMPORT_STRING = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
"""A ``"module:attr"`` string: what uvicorn (``serving.app:create_app_from_env``), entry points
and similar loaders import by name. Its module counts as imported when it is a project module."""

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
"""A string that may be a module's name: counted as an import when it names a project module
(``importlib.import_module("models.specs")``, ``[sys.executable, "-m", "bench.sources"]``).
Conservative: a word that happens to be a package's name (``"features"``) adds that package's
``__init__.py``."""

_IMPORTERS = frozenset({"import_module", "__import__"})
"""Functions importing a module by name: ``importlib.import_module``, the builtin ``__import__``."""

_SCANNERS = frozenset({"iter_modules", "walk_packages"})
"""``pkgutil`` functions listing a package's modules, as a package importing all of them calls."""

EVERY = "*"
"""Ends a name in :func:`imported_modules`'s answer standing for every module whose name starts
with the rest: ``models.specs.*`` is every module under :mod:`models.specs`."""

CLI_MODULE = "pipelines.cli"
"""The module whose ``_COMMANDS`` table maps each ``guanxi`` command to its job module."""


@dataclass(frozen=True)
class Figure:
    """One published figure (or set of figures one run gives) and what its timed path runs.

    Parameters
    ----------
    name : str
        How the READMEs name it: ``bench.features``, ``guanxi value at 1M``.
    commit : str
        Main's commit the latest run was measured on (its code; a docs-only commit on top of the
        code counts as that code).
    measured : str
        When, UTC: ``2026-12-02 15:20``.
    modules : tuple of str
        Modules the run starts from, as importable names (``bench.features``).
    commands : tuple of str
        ``guanxi`` commands the run starts as subprocesses (``train``, ``data sample``).
    files : tuple of str
        Other files the run reads, relative to the repository's root.
    where : str
        The section with its runs, as a link from bench/README.md: ``HISTORY.md#<anchor>`` for
        a section of bench/HISTORY.md (where the runs are), ``<anchor>`` alone for one of
        bench/README.md itself.
    """

    name: str
    commit: str
    measured: str
    modules: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    where: str = ""


FIGURES: tuple[Figure, ...] = (
    Figure("bench.features", "803e6fc", "2026-12-06 01:13", ("bench.features",),
           where="HISTORY.md#session-42-the-heavy-windows-figures-coordinator"),
    Figure("bench.train", "0d5328c", "2026-12-06 10:09", ("bench.train",), ("train",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("bench.serve", "a9980d0", "2026-12-06 19:19", ("bench.serve",), ("serve",),
           where="HISTORY.md#session-48-the-final-code-the-light-figures-coordinator"),
    Figure("bench.profile", "d605d2d", "2026-12-06 13:14", ("bench.profile",),
           where="HISTORY.md#session-46-the-first-landing-the-light-figures-coordinator"),
    Figure("guanxi score --explain 5 at 1M", "0d5328c", "2026-12-06 10:18", (), ("score",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("bench.explain", "0d5328c", "2026-12-06 10:21", ("bench.explain",), ("train",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("bench.load", "a9980d0", "2026-12-06 19:20", ("bench.load",), ("serve",),
           where="HISTORY.md#session-48-the-final-code-the-light-figures-coordinator"),
    Figure("bench.ui", "a9980d0", "2026-12-06 19:22", ("bench.ui",), ("serve",),
           where="HISTORY.md#session-48-the-final-code-the-light-figures-coordinator"),
    Figure("bench.sample", "803e6fc", "2026-12-06 01:11", ("bench.sample",), ("data sample",),
           where="HISTORY.md#session-42-the-heavy-windows-figures-coordinator"),
    Figure("bench.spark", "803e6fc", "2026-12-06 01:12", ("bench.spark",),
           where="HISTORY.md#session-42-the-heavy-windows-figures-coordinator"),
    Figure("bench.scale, 100k and 1M, both engines", "803e6fc", "2026-12-06 00:45",
           ("bench.scale",),
           where="HISTORY.md#session-42-the-heavy-windows-figures-coordinator"),
    Figure("bench.scale, 5M Polars", "803e6fc", "2026-12-06 01:09", ("bench.scale",),
           where="HISTORY.md#session-42-the-heavy-windows-figures-coordinator"),
    Figure("bench.train_scale, 100k cross-sell", "0d5328c", "2026-12-06 09:58",
           ("bench.train_scale",), ("train",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("bench.train_scale, 1M", "0d5328c", "2026-12-06 09:22", ("bench.train_scale",),
           ("train",), where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("bench.sources", "803e6fc", "2026-12-06 01:07", ("bench.sources",),
           where="HISTORY.md#session-42-the-heavy-windows-figures-coordinator"),
    Figure("bench.target", "2ae0b80", "2026-12-05 21:36", ("bench.target",),
           where="HISTORY.md#session-41-the-final-codes-figures-coordinator"),
    Figure("bench.xsell_objectives", "0d5328c", "2026-12-06 10:24", ("bench.xsell_objectives",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("bench.value", "e98cb64", "2026-12-05 10:23", ("bench.value",),
           files=("bench/_lifetimes_child.py",),
           where="HISTORY.md#session-37-the-final-code-the-light-figures-coordinator"),
    Figure("bench.value_features", "0d5328c", "2026-12-06 10:14", ("bench.value_features",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("guanxi value at 1M, staged and in memory", "0d5328c", "2026-12-06 10:29", (),
           ("value",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("guanxi value at 1M, staged (value19)", "0d5328c", "2026-12-06 10:29", (), ("value",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("the demo (guanxi demo --no-serve)", "a9980d0", "2026-12-06 19:23", (), ("demo",),
           where="HISTORY.md#session-48-the-final-code-the-light-figures-coordinator"),
    Figure("guanxi cycle at 1,000 customers", "a9980d0", "2026-12-06 19:24", (),
           ("data sample", "cycle"), where="HISTORY.md#guanxi-cycle-timings-by-hand-no-script"),
    Figure("the drift figures (guanxi drift at 1,000 customers)", "a9980d0", "2026-12-06 19:25",
           (), ("data sample", "train", "promote", "score", "drift"),
           where="HISTORY.md#the-drift-figures-readme-drift-and-live-performance"),
    Figure("issue 10's cross-sell (tests/training)", "0d5328c", "2026-12-06 10:28",
           ("tests.training.test_train",),
           where="HISTORY.md#session-45-the-heavy-figures-coordinator"),
    Figure("uplift targeting (tests/models)", "19b681a", "2026-12-06 10:47",
           ("tests.models.test_uplift",),
           where="HISTORY.md#session-45-the-final-code-the-light-figures-coordinator"),
)  # fmt: skip
"""Every published figure's latest run. Change a record when its figure is re-measured."""


Reader = Callable[[str], str]
"""Gives the text of a file (path relative to the repository's root) at the revision read."""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _python_sources(repo: Path, rev: str, paths: list[str]) -> dict[str, str]:
    """Read every Python file at ``rev`` through one ``git cat-file --batch``."""
    wanted = [path for path in paths if path.endswith(".py")]
    out = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="".join(f"{rev}:{path}\n" for path in wanted).encode(),
        check=True,
        capture_output=True,
    ).stdout
    texts: dict[str, str] = {}
    at = 0
    for path in wanted:
        end = out.index(b"\n", at)
        size = int(out[at:end].split()[2])
        texts[path] = out[end + 1 : end + 1 + size].decode()
        at = end + 1 + size + 1
    return texts


def project_modules(paths: Iterable[str]) -> dict[str, str]:
    """Map every Python file of the repository to its importable module name.

    Parameters
    ----------
    paths : iterable of str
        The repository's files, relative to its root (``git ls-tree`` order or any).

    Returns
    -------
    dict of str to str
        Module name (``features.snapshot``; ``features`` for ``features/__init__.py``) to path.
    """
    modules = {}
    for path in paths:
        if not path.endswith(".py"):
            continue
        parts = path[: -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and all(part.isidentifier() for part in parts):
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _static_start(node: ast.expr, module: str, package: str) -> tuple[str, bool]:
    """The fixed start of a name built in the source, and whether that is all of it.

    ``"a.b"`` is ``("a.b", True)``; ``f"{__name__}.{x}"`` in ``pkg`` is ``("pkg.", False)``;
    ``"a." + x`` is ``("a.", False)``; a variable is ``("", False)``.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.Name) and node.id in ("__name__", "__package__"):
        return (module if node.id == "__name__" else package), True
    if isinstance(node, ast.FormattedValue) and node.format_spec is None:
        return _static_start(node.value, module, package)
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Add):
            return "", False
        text = ""
        for part in node.values if isinstance(node, ast.JoinedStr) else (node.left, node.right):
            start, whole = _static_start(part, module, package)
            text += start
            if not whole:
                return text, False
        return text, True
    return "", False


def _absolute(start: str, whole: bool, base: list[str]) -> str:
    """Resolve a relative name's start (``.b``, ``..c.``) against a package's parts.

    As ``import_module(start, package)`` does when ``package`` is the module's own package (a
    start that is not ``whole`` and stops at the dots, ``f".{x}"``, keeps a dot: ``pkg.``).
    """
    rest = start.lstrip(".")
    level = len(start) - len(rest)
    if not level:
        return start
    anchor = ".".join(base[: len(base) - level + 1])
    return f"{anchor}.{rest}" if rest or not whole else anchor


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (parent := _dotted(node.value)) is not None:
        return f"{parent}.{node.attr}"
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Each name an import binds to the module it may be (``import a.b as c``: ``c`` is ``a.b``)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _scanned(call: ast.Call, package: str, bound: dict[str, str]) -> set[str]:
    """The packages a ``pkgutil.iter_modules(...)`` or ``walk_packages(...)`` call lists."""
    found: set[str] = set()
    for node in ast.walk(call):
        if isinstance(node, ast.Attribute) and node.attr == "__path__":
            name = _dotted(node.value)
            if name is not None:
                head, _, rest = name.partition(".")
                found.add(".".join(filter(None, [bound.get(head, head), rest])))
    # ``__path__`` itself, or a path the source cannot say: the package the call is in
    return found or {package}


def imported_modules(source: str, module: str, package: bool) -> set[str]:
    """Name every module a module's source may import when it runs.

    Parameters
    ----------
    source : str
        The module's Python source.
    module : str
        Its name, to resolve relative imports.
    package : bool
        Whether it is a package's ``__init__.py``.

    Returns
    -------
    set of str
        Absolute names: for ``import a.b``, ``a.b``; for ``from a import b``, ``a`` and ``a.b``
        (``b`` may be a submodule). Imports inside functions count; those under
        ``if TYPE_CHECKING:`` do not, since they never run. Imports by name at run time count,
        conservatively: any string literal that is a dotted name, ``a.b`` (the caller keeps it
        when a project module has that name: ``importlib.import_module("models.specs")``,
        ``"-m", "bench.sources"``), or ``"a.b:attr"`` whole (as uvicorn and entry points take an
        app by name); for ``import_module``/``__import__`` of a name built at run time, its fixed
        start followed by :data:`EVERY` (``import_module(f"{__name__}.{x}")`` in ``pkg``:
        ``pkg.*``, every module under ``pkg``); for ``pkgutil.iter_modules``/``walk_packages``
        of a ``__path__``, ``<that package>.*``; and what Python code in a string literal
        (``python -c "from a import b"``) imports. Names of no project module are dropped by the
        caller (:func:`figure_path`). In :data:`CLI_MODULE`, the ``_COMMANDS`` table's strings
        are left out: :func:`cli_commands` reads them, and a run imports only its command's.
    """
    names: set[str] = set()
    base = module.split(".") if package else module.split(".")[:-1]
    here = ".".join(base)
    tree = ast.parse(source)
    bound = _aliases(tree)

    def visit(node: ast.AST, strings: bool = True) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement, strings)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                parent = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                parent = node.module or ""
            if parent:
                names.add(parent)
                names.update(f"{parent}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and module == CLI_MODULE:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_COMMANDS" for t in targets):
                strings = False
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1] if name else None
            if last in _IMPORTERS and node.args:
                start, whole = _static_start(node.args[0], module, here)
                start = _absolute(start, whole, base)
                # a name the source cannot say at all (a variable) adds nothing here: its value is
                # a string literal in the source (counted below) or comes from elsewhere
                if whole:
                    names.add(start)
                elif start:
                    names.add(start + EVERY)
            elif last in _SCANNERS:
                names.update(f"{scanned}.{EVERY}" for scanned in _scanned(node, here, bound))
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if match := _IMPORT_STRING.fullmatch(text):
                names.add(match.group(1))
            elif _MODULE_NAME.fullmatch(text):
                names.add(text)
            elif "import" in text:
                names.update(_code_imports(text, module, package))
        for child in ast.iter_child_nodes(node):
            visit(child, strings)

    visit(tree)
    return names


def _code_imports(text: str, module: str, package: bool) -> set[str]:
    """What a string literal imports when it is Python code (``python -c "import a"``)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    if not any(isinstance(node, ast.Import | ast.ImportFrom) for node in ast.walk(tree)):
        return set()
    return imported_modules(text, module, package)


def cli_commands(source: str) -> dict[str, str]:
    """Read which job module each ``guanxi`` command runs from ``pipelines/cli.py``.

    Parameters
    ----------
    source : str
        The source of :data:`CLI_MODULE`, whose ``_COMMANDS`` holds rows of ``(group, parent,
        name, module, function)``.

    Returns
    -------
    dict of str to str
        Command as typed after ``guanxi`` (``train``, ``data sample``) to its module.
    """
    commands = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == "_COMMANDS" for t in targets):
            continue
        for group, name, module in _rows(value):
            commands[name if group == name else f"{group} {name}"] = module
    return commands


def _rows(value: ast.expr) -> list[tuple[str, str, str]]:
    rows = []
    for row in getattr(value, "elts", []):
        items = getattr(row, "elts", [])
        words = [item.value if isinstance(item, ast.Constant) else None for item in items]
        if len(words) == 5 and all(isinstance(words[i], str) for i in (0, 2, 3)):
            rows.append((str(words[0]), str(words[2]), str(words[3])))
    return rows


def figure_path(
    figure: Figure,
    paths: Iterable[str],
    read: Reader,
    imports: dict[str, set[str]] | None = None,
) -> list[str]:
    """List the files a figure's run imports: its modules' transitive project imports.

    Parameters
    ----------
    figure : Figure
        The figure.
    paths : iterable of str
        The repository's files at the revision read.
    read : callable
        Gives a file's text at that revision.
    imports : dict of str to set of str, optional
        A cache of each path's :func:`imported_modules`, shared between figures.

    Returns
    -------
    list of str
        Sorted paths relative to the root: every project module reached (with the
        ``__init__.py`` of the packages above it), the job modules of its commands with what
        they import, and its declared files (with what those that are modules import).

    Raises
    ------
    KeyError
        When a declared module or command does not exist at that revision.
    """
    modules = project_modules(paths)
    imports = {} if imports is None else imports
    entries = list(figure.modules)
    entries += [name for name, path in modules.items() if path in figure.files]
    if figure.commands:
        table = cli_commands(read(modules[CLI_MODULE]))
        entries += [CLI_MODULE, *(table[command] for command in figure.commands)]
    missing = [name for name in entries if name not in modules]
    if missing:
        raise KeyError(f"{figure.name}: no module {', '.join(missing)}")
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [p for i in range(1, len(parts)) if (p := ".".join(parts[:i])) in modules]
        path = modules[name]
        if path not in imports:
            imports[path] = imported_modules(read(path), name, path.endswith("__init__.py"))
        for imported in imports[path]:
            if imported.endswith(EVERY):
                start = imported[: -len(EVERY)]
                todo += [m for m in modules if m.startswith(start) and m not in seen]
            elif imported in modules and imported not in seen:
                todo.append(imported)
    return sorted({modules[name] for name in seen} | set(figure.files))


@dataclass(frozen=True)
class Staleness:
    """A figure against the code at the revision read.

    Parameters
    ----------
    figure : Figure
        The figure.
    path : list of str
        Its path's files (:func:`figure_path`).
    commits : list of str
        ``git log --oneline <commit>..<rev> -- <path>``, newest first.
    """

    figure: Figure
    path: list[str]
    commits: list[str]

    @property
    def current(self) -> bool:
        """Whether no commit since the figure's touched its path."""
        return not self.commits


def staleness(
    repo: Path, rev: str = "HEAD", figures: Iterable[Figure] = FIGURES
) -> list[Staleness]:
    """Compute, for every figure, the commits since its run that touched its path.

    Parameters
    ----------
    repo : Path
        The git repository (any folder inside it).
    rev : str, default "HEAD"
        The code to compare with; its files decide each path.
    figures : iterable of Figure
        The declared figures.

    Returns
    -------
    list of Staleness
        One per figure, in order.
    """
    paths = _git(repo, "ls-tree", "-r", "--name-only", rev).splitlines()
    texts = _python_sources(repo, rev, paths)

    def read(path: str) -> str:
        return texts[path] if path in texts else _git(repo, "show", f"{rev}:{path}")

    result: list[Staleness] = []
    imports: dict[str, set[str]] = {}
    for figure in figures:
        path = figure_path(figure, paths, read, imports)
        log = _git(repo, "log", "--oneline", f"{figure.commit}..{rev}", "--", *path)
        result.append(Staleness(figure, path, log.splitlines()))
    return result


SHOWN = 8
"""Commits named in a row of the table; ``--log`` lists them all with their subjects."""


def _hashes(commits: list[str]) -> str:
    shas = [line.split(" ", 1)[0] for line in commits]
    more = f" and {len(shas) - SHOWN} more" if len(shas) > SHOWN else ""
    return ", ".join(shas[:SHOWN]) + more if shas else "none"


def table(rows: list[Staleness], rev: str, head: str) -> str:
    """Write the staleness table as Markdown.

    Parameters
    ----------
    rows : list of Staleness
        The figures against the code.
    rev : str
        The revision compared with, as given.
    head : str
        Its abbreviated commit.

    Returns
    -------
    str
        A heading line and one row per figure: its commit and run, its path's size, whether it
        is current and the commits since that touched its path.
    """
    lines = [
        f"Against {rev} ({head}): `python -m bench.staleness`",
        "",
        "| figure | measured on | run (UTC) | its path | status | commits since that touched it |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        f = row.figure
        name = f"[{f.name}]({f.where if '#' in f.where else '#' + f.where})" if f.where else f.name
        status = "current" if row.current else f"**path changed since** ({len(row.commits)})"
        since = _hashes(row.commits)
        lines.append(
            f"| {name} | {f.commit} | {f.measured} | {len(row.path)} files | {status} | {since} |"
        )
    return "\n".join(lines)


MARKERS = ("<!-- staleness:start -->", "<!-- staleness:end -->")
"""The lines around the table in bench/README.md that ``--write`` replaces."""


def write_between_markers(path: Path, text: str) -> None:
    """Replace what lies between :data:`MARKERS` in a Markdown file with ``text``.

    Parameters
    ----------
    path : Path
        The file; it must hold both markers, in order, each on its own line.
    text : str
        The new content.

    Raises
    ------
    ValueError
        When the file lacks the markers.
    """
    old = path.read_text(encoding="utf-8")
    start, end = old.find(MARKERS[0] + "\n"), old.find(MARKERS[1])
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {MARKERS[0]} ... {MARKERS[1]} lines")
    begin = start + len(MARKERS[0]) + 1
    path.write_text(old[:begin] + text.rstrip("\n") + "\n" + old[end:], encoding="utf-8")


def main(argv: list[str] | None = None, figures: Iterable[Figure] = FIGURES) -> int:
    """Print the staleness table; with ``--check``, return 1 when a figure is stale.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: the command line's).
    figures : iterable of Figure
        The declared figures (default :data:`FIGURES`).

    Returns
    -------
    int
        0, or 1 with ``--check`` when any figure's path changed since its run.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd())
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--check", action="store_true", help="exit 1 if a figure is stale")
    parser.add_argument("--files", action="store_true", help="list each figure's path")
    parser.add_argument("--log", action="store_true", help="list each stale figure's commits")
    parser.add_argument(
        "--write",
        type=Path,
        metavar="MARKDOWN",
        help=f"also put the table between {MARKERS[0]} and {MARKERS[1]} in this file",
    )
    args = parser.parse_args(argv)
    rows = staleness(args.repo, args.rev, figures)
    head = _git(args.repo, "rev-parse", "--short", args.rev).strip()
    text = table(rows, args.rev, head)
    print(text)
    if args.write:
        write_between_markers(args.write, text)
    if args.files:
        for row in rows:
            print(f"\n{row.figure.name}: {len(row.path)} files\n  " + "\n  ".join(row.path))
    if args.log:
        for row in rows:
            if row.commits:
                print(
                    f"\n{row.figure.name} since {row.figure.commit}:\n  " + "\n  ".join(row.commits)
                )
    stale = [row.figure.name for row in rows if not row.current]
    if args.check and stale:
        print(f"\nstale: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
