"""Re-measure the published figures, one run after another, as their current runs were made.

    python -m bench.remeasure [--stale] [--only NAME ...] [--list] [--logs DIR] [--work DIR]

Every figure :data:`bench.staleness.FIGURES` declares has its run here (:data:`RUNS`), with the
commands bench/README.md's "How to run them" gives and the hand-run figures' sections of
bench/HISTORY.md state (the 1M ``guanxi score --explain 5`` and ``guanxi value`` from a home
whose four models were trained on the 20k sample and whose 1M snapshot is built first, the demo
in a fresh ``GUANXI_HOME``, ``guanxi cycle`` three times on a 1,000-customer sample), and the
README's drift figures with the commands its "Drift and live performance" gives, in a fresh store
(a churn model trained on a 1,000-customer sample, scored on two days, then ``guanxi drift``).
The runs go one at a time, in the order of :data:`RUNS`, the longest first: two heavy runs at
once on two cores make both figures wrong.

Each step writes its output to ``<logs>/<step>.log``, under GNU ``time -v`` when the machine has
``/usr/bin/time`` (the peak memory the hand-run figures publish), and a line to
``<logs>/steps.log`` as it starts and ends: the UTC time, the load average, main's commit and,
at the end, the exit status. A step that fails ends its figure's run (the next figure runs); a
shared set-up that fails skips the figures needing it. The files a step writes (the 1M scores
and value tables) go to ``<work>/out``, the drift figures' to their folder (:data:`DRIFT`).
Every step starts without the shell's ``GUANXI_*`` and ``MLFLOW_*`` settings, as the published
runs did: an exported ``GUANXI_STORE_KEY`` would add signing to the timed runs,
``GUANXI_FEATURES_IN_MEMORY_EVENTS`` turn the staged value runs into in-memory ones,
``MLFLOW_TRACKING_URI`` send the 1M home's models to another registry.

The set-ups the chosen runs need (the benches' samples, bench.features' own, the 1M home) are
made first, as the published runs' were, so that no timed log holds a sample's generation.
``--stale`` runs only the figures ``python -m bench.staleness`` finds stale, ``--only`` the ones
named, and ``--list`` prints the commands without running anything.

It measures; it does not publish. Read each log and write the runs into bench/HISTORY.md, the
records of bench/staleness.py and the current figures as bench/README.md says.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bench.staleness import staleness

__all__ = ["PREPARED", "RUNS", "Run", "Step", "main", "selected"]

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Step:
    """One command of a run.

    Parameters
    ----------
    label : str
        Its log's name (``<logs>/<label>.log``), unique across :data:`RUNS` and
        :data:`PREPARED`; two figures one run gives share its steps.
    argv : tuple of str
        The command; ``{python}``, ``{guanxi}``, ``{samples}``, ``{work}`` and ``{out}`` are
        the virtualenv's interpreter and ``guanxi``, the benches' sample folder
        (:data:`SAMPLES`), the work folder and the folder of the files steps write.
    env : mapping of str to str
        Variables set for it (placeholders as in ``argv``).
    fresh : str or None
        A folder under the work folder emptied before the step (a fresh ``GUANXI_HOME``).
    cwd : str or None
        Its working folder (placeholders as in ``argv``), the repository's root by default.
    """

    label: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    fresh: str | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class Run:
    """The steps that re-measure one published figure.

    Parameters
    ----------
    figure : str
        Its name in :data:`bench.staleness.FIGURES`.
    steps : tuple of Step
        Its commands, in order.
    needs : tuple of str
        Set-ups of :data:`PREPARED` it reads, made once before the first run needing them.
    """

    figure: str
    steps: tuple[Step, ...]
    needs: tuple[str, ...] = ()


def _bench(label: str, command: str) -> Step:
    """``python -m <command>`` (words split on spaces), logged as ``label``."""
    return Step(label, ("{python}", "-m", *command.split()))


def _guanxi(
    label: str,
    command: str,
    home: str,
    *,
    in_memory: bool = False,
    fresh: str | None = None,
    cwd: str | None = None,
) -> Step:
    """``guanxi <command>`` (words split on spaces) in the ``GUANXI_HOME`` ``home``; with
    ``in_memory``, the events read in memory (``GUANXI_FEATURES_IN_MEMORY_EVENTS``)."""
    env = {"GUANXI_HOME": home}
    if in_memory:
        env["GUANXI_FEATURES_IN_MEMORY_EVENTS"] = "100000000"
    return Step(label, ("{guanxi}", *command.split()), env, fresh, cwd)


SAMPLES = Path(tempfile.gettempdir()) / "guanxi-bench"
"""Where bench.scale, bench.spark and bench.train_scale keep their samples (their ``--data``
default), which the hand-run figures read too."""

S20 = "{samples}/sample-20000-42"
S1M = "{samples}/sample-1000000-42"
DATA_20K = f"--events {S20}/events.parquet --customers {S20}/customers.parquet"
DATA_1M = f"--events {S1M}/events.parquet --customers {S1M}/customers.parquet"
HOME_1M = "{work}/home1m"
CYCLE = "{work}/cycle"
DATA_CYCLE = f"--events {CYCLE}/data/events.parquet --customers {CYCLE}/data/customers.parquet"
DRIFT = "{work}/drift"
"""The drift figures' folder, emptied first: README's commands run in it as in its ``$PWD``,
their store ``drift-home`` (``export GUANXI_HOME=$PWD/drift-home``) and files beside it."""
DATA_DRIFT = "--events drift-data/events.parquet --customers drift-data/customers.parquet"

_SAMPLES = (
    "from pathlib import Path; from pipelines.sample import generate_sample; "
    'folders = {{n: Path("{samples}") / f"sample-{{n}}-42" '
    "for n in (20_000, 100_000, 1_000_000, 5_000_000)}}; "
    "[generate_sample(n, f, seed=42) for n, f in folders.items() "
    'if not (f / "events.parquet").is_file()]'
)
"""Makes the sample sizes the benches and hand-run figures read, before the first timed step
(5M takes 5-10 minutes)."""

_NO_NUMBA_CACHE = (
    'import pathlib; [p.unlink() for x in ("*.nbi", "*.nbc") for p in pathlib.Path().rglob(x)]'
)

_TASKS = ("cross_sell", "churn", "referral", "repurchase")

PREPARED: dict[str, tuple[Step, ...]] = {
    "samples": (Step("samples", ("{python}", "-c", _SAMPLES)),),
    # bench.features' own sample, with its own defaults, found or generated as the bench
    # would, outside its timed log (it imported the bench's private _sample_dir in a -c string)
    "features-sample": (
        Step("features-sample", ("{python}", "-m", "bench.features", "--sample-only")),
    ),
    "home1m": (
        *(
            _guanxi(
                f"home1m-train-{task}",
                f"train --task {task} {DATA_20K} --as-of 2025-12-31 --horizon 90 --trials 2 "
                "--seed 42",
                HOME_1M,
                fresh="home1m" if task == _TASKS[0] else None,
            )
            for task in _TASKS
        ),
        Step(
            "home1m-warm-up", ("{python}", "-c", "from models.treeshap import warm_up; warm_up()")
        ),
        _guanxi("home1m-features", f"features build --as-of 2025-12-31 {DATA_1M}", HOME_1M),
    ),
}
"""Set-ups runs share: the benches' 20k, 100k, 1M and 5M samples (``guanxi data sample``'s
generator with seed 42 and the defaults, as the benches make theirs when missing), and the 1M
home: the four tasks trained on the 20k sample, numba's TreeSHAP compiled, the 1M snapshot
built."""

_VALUE_1M = tuple(
    _guanxi(
        f"value1m-{kind}{i}",
        f"value {DATA_1M} --as-of 2025-12-31 --alias challenger --no-store "
        f"--out {{out}}/value1m-{kind}{i}.parquet",
        HOME_1M,
        in_memory=kind == "memory",
    )
    for i in (1, 2)
    for kind in ("staged", "memory")
)
"""``guanxi value`` at 1M, staged and in memory, twice each in turn."""


def _cycle(label: str, day: str) -> Step:
    command = f"cycle --as-of {day} {DATA_CYCLE} --tasks churn --trials 1 --value-horizon 90"
    return _guanxi(label, command, CYCLE)


def _drift(label: str, command: str, *, fresh: bool = False) -> Step:
    """``guanxi <command>`` as README's "Drift and live performance" gives it: in :data:`DRIFT`,
    its store ``drift-home`` there; with ``fresh``, the folder emptied first."""
    return _guanxi(
        label, command, f"{DRIFT}/drift-home", fresh="drift" if fresh else None, cwd=DRIFT
    )


_PYTEST = "pytest -m slow -s -p no:cacheprovider"

RUNS: tuple[Run, ...] = (
    Run(
        "bench.train_scale, 1M",
        tuple(
            _bench(
                f"ts1m-{task}",
                f"bench.train_scale --customers 1000000 --tasks {task} --trials 2 --modes sampled",
            )
            for task in _TASKS
        ),
        ("samples",),
    ),
    Run(
        "bench.train_scale, 100k cross-sell",
        (
            _bench(
                "ts100k",
                "bench.train_scale --customers 100000 --tasks cross_sell --trials 5 "
                "--modes sampled all",
            ),
        ),
        ("samples",),
    ),
    Run("bench.train", (_bench("train", "bench.train"),)),
    Run(
        "bench.scale, 100k and 1M, both engines",
        (
            _bench(
                "scale",
                "bench.scale --sizes 100000 1000000 --spark-sizes 100000 1000000 --fit-size 100000",
            ),
        ),
        ("samples",),
    ),
    Run("bench.value_features", (_bench("vfeat", "bench.value_features --customers 20000"),)),
    Run(
        "guanxi score --explain 5 at 1M",
        (
            _guanxi(
                "explain1m",
                f"score --as-of 2025-12-31 {DATA_1M} --alias challenger --explain 5 --no-store "
                "--out {out}/scores-1m.parquet",
                HOME_1M,
            ),
        ),
        ("samples", "home1m"),
    ),
    Run("bench.explain", (_bench("explain", "bench.explain"),)),
    Run("bench.xsell_objectives", (_bench("xsell", "bench.xsell_objectives --customers 20000"),)),
    Run(
        "bench.sources",
        (_bench("sources", "bench.sources --events 2000000 10000000 --repeat 2"),),
    ),
    Run(
        "bench.scale, 5M Polars",
        (
            _bench(
                "scale5m",
                "bench.scale --sizes 100000 1000000 5000000 --spark-sizes --steps snapshot "
                "--fit-size 100000",
            ),
        ),
        ("samples",),
    ),
    Run("bench.sample", (_bench("sample", "bench.sample --customers 1000000"),)),
    Run("bench.spark", (_bench("spark", "bench.spark"),), ("samples",)),
    Run(
        "bench.features",
        (_bench("features", "bench.features --repeat 3"),),
        ("features-sample",),
    ),
    Run(
        "issue 10's cross-sell (tests/training)",
        (
            _bench(
                "issue10",
                f"{_PYTEST} tests/training/test_train.py "
                "-k test_cross_sell_is_graded_on_the_top_categories_at_20k",
            ),
        ),
    ),
    Run("guanxi value at 1M, staged and in memory", _VALUE_1M, ("samples", "home1m")),
    Run("guanxi value at 1M, staged (value19)", _VALUE_1M, ("samples", "home1m")),
    Run(
        "uplift targeting (tests/models)",
        (_bench("uplift", f"{_PYTEST} tests/models/test_uplift.py"),),
    ),
    Run("bench.target", (_bench("target", "bench.target"),)),
    Run("bench.serve", (_bench("serve", "bench.serve"),)),
    Run("bench.load", (_bench("load", "bench.load"),)),
    Run(
        "bench.ui",
        (  # numba's cache removed first, as after an install: the first request's figure
            Step("ui-no-numba-cache", ("{python}", "-c", _NO_NUMBA_CACHE)),
            _bench("ui", "bench.ui --customers 100000"),
        ),
    ),
    Run("bench.profile", (_bench("profile", "bench.profile"),)),
    Run(
        "the demo (guanxi demo --no-serve)",
        (_guanxi("demo", "demo --no-serve", "{work}/demo", fresh="demo"),),
    ),
    Run(
        "guanxi cycle at 1,000 customers",
        (
            _guanxi(
                "cycle-sample",
                "data sample --customers 1000 --seed 3 --out data",
                CYCLE,
                fresh="cycle",
                cwd=CYCLE,
            ),
            _cycle("cycle-2024-10-31", "2024-10-31"),
            _cycle("cycle-2024-10-31-again", "2024-10-31"),
            _cycle("cycle-2025-03-31", "2025-03-31"),
        ),
    ),
    Run("bench.value", (_bench("value", "bench.value"), _bench("value-again", "bench.value"))),
    Run(
        "the drift figures (guanxi drift at 1,000 customers)",
        (  # README's commands, word for word; last, as its published runs followed the others
            _drift(
                "drift-sample",
                "data sample --customers 1000 --seed 3 --out drift-data/",
                fresh=True,
            ),
            _drift(
                "drift-train",
                f"train --task churn {DATA_DRIFT} --as-of 2024-10-31 --horizon 90 --trials 1",
            ),
            _drift("drift-promote", "promote --task churn"),
            *(
                _drift(
                    f"drift-score-{day}",
                    f"score --as-of {day} --tasks churn {DATA_DRIFT} --out s{i}.parquet",
                )
                for i, day in enumerate(("2024-10-31", "2025-03-31"), start=1)
            ),
            _drift("drift", "drift --as-of 2025-03-31 --tasks churn --out drift.html"),
        ),
    ),
)
"""Every published figure's run, in the order they go: the heaviest first, as the sessions'
heavy windows ran them (bench/HISTORY.md). Two figures one run gives share its steps, run once."""


def selected(names: Sequence[str] = (), stale_only: bool = False, repo: Path = REPO) -> list[Run]:
    """Pick the runs to make, in :data:`RUNS`' order.

    Parameters
    ----------
    names : sequence of str
        Figures named (``--only``); every figure when empty.
    stale_only : bool, default False
        Keep only the figures ``bench.staleness`` finds stale at the repository's HEAD.
    repo : pathlib.Path
        The repository.

    Returns
    -------
    list of Run
        The runs.

    Raises
    ------
    ValueError
        A name that is no figure's, with the figures' names.
    """
    from features.contracts import quoted_near  # here: it loads polars, which sets the allocator's
    # environment (_RJEM_MALLOC_CONF) every step would inherit

    known = [run.figure for run in RUNS]
    for name in names:
        if name not in known:
            listed = "; ".join(map(repr, known))
            raise ValueError(f"no figure named {quoted_near(name, known)}; the figures: {listed}")
    runs = [run for run in RUNS if not names or run.figure in names]
    if stale_only:
        stale = {row.figure.name for row in staleness(repo, "HEAD") if not row.current}
        runs = [run for run in runs if run.figure in stale]
    return runs


def _words(step: Step, places: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    argv = [word.format(**places) for word in step.argv]
    return argv, {name: value.format(**places) for name, value in step.env.items()}


def _shown(step: Step, places: Mapping[str, str]) -> str:
    argv, env = _words(step, places)
    words = [*(f"{name}={value}" for name, value in env.items()), *argv]
    text = shlex.join(words)
    return f"  {step.label}: {text}" + (f"  (in {step.cwd.format(**places)})" if step.cwd else "")


class _Log:
    """``<logs>/steps.log``: a line as each step starts and ends."""

    def __init__(self, logs: Path, repo: Path) -> None:
        self.path = logs / "steps.log"
        self.repo = repo

    def line(self, text: str) -> None:
        load = os.getloadavg()[0]
        try:
            commit = subprocess.run(
                ["git", "-C", str(self.repo), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
        except OSError:  # no git: the line says so
            commit = ""
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a", encoding="utf-8") as out:
            out.write(f"{text} {now} load {load:.2f} rev {commit or '?'}\n")


class _Maker:
    """Makes the steps of the runs, each step and each set-up once."""

    def __init__(self, places: Mapping[str, str], logs: Path, log: _Log) -> None:
        self.places = places
        self.logs = logs
        self.log = log
        self.made: dict[str, int] = {}  # step label: exit status
        self.prepared: dict[str, str] = {}  # set-up: its failed step's label, or ""

    def step(self, step: Step) -> int:
        """Run one step (once), its output in ``<logs>/<label>.log``; return its exit status."""
        if step.label in self.made:
            return self.made[step.label]
        self.log.line(f"{step.label} START")
        with (self.logs / f"{step.label}.log").open("w", encoding="utf-8") as out:
            status = self._run(step, out)
        self.log.line(f"{step.label} END rc={status}")
        self.made[step.label] = status
        return status

    def _run(self, step: Step, out: TextIO) -> int:
        """Empty the step's fresh folder and run its command, output to ``out``; its status.

        A fresh folder that cannot be emptied (status 1) or a missing program (127) fails this
        step, not the whole re-measure.
        """
        argv, env = _words(step, self.places)
        timed = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").is_file() else []
        repo = self.places["repo"]
        path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
        shell = {k: v for k, v in os.environ.items() if not k.startswith(("GUANXI_", "MLFLOW_"))}
        if step.fresh:
            fresh = Path(self.places["work"]) / step.fresh
            try:
                if fresh.exists():
                    shutil.rmtree(fresh)
                fresh.mkdir(parents=True)
            except OSError as exc:
                out.write(f"{exc}\n")
                return 1
        try:
            return subprocess.run(
                [*timed, *argv],
                cwd=step.cwd.format(**self.places) if step.cwd else repo,
                env={**shell, "PYTHONPATH": path, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        except OSError as exc:
            out.write(f"{exc}\n")
            return 127

    def prepare(self, need: str) -> None:
        """Make a set-up's steps (once), stopping at the first that fails."""
        if need not in self.prepared:
            self.prepared[need] = next((s.label for s in PREPARED[need] if self.step(s)), "")

    def measure(self, run: Run) -> str:
        """Make a run's set-ups (once) and steps; return why it failed, empty when it did not."""
        for need in run.needs:
            self.prepare(need)
            if self.prepared[need]:
                return f"its set-up {need} failed at {self.prepared[need]}"
        for step in run.steps:
            if status := self.step(step):
                return f"{step.label} exited {status}"
        return ""


def main(argv: list[str] | None = None) -> int:
    """Re-measure the figures chosen, one step at a time; say which failed.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: the command line's).

    Returns
    -------
    int
        0 when every step chosen ended with 0 (or with ``--list``), else 1.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="these figures")
    parser.add_argument("--stale", action="store_true", help="only the stale figures")
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--logs", type=Path, help="where the logs go (default: <work>/logs)")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "guanxi-remeasure"
    )
    args = parser.parse_args(argv)
    try:
        runs = selected(args.only, args.stale)
    except ValueError as exc:
        parser.error(str(exc))
    logs = args.logs or args.work / "logs"
    python = Path(sys.executable)
    places = {
        "python": str(python),
        "guanxi": str(python.with_name("guanxi")),
        "samples": str(SAMPLES),
        "work": str(args.work.resolve()),
        "out": str((args.work / "out").resolve()),
        "repo": str(REPO),
    }
    needed = list(dict.fromkeys(need for run in runs for need in run.needs))
    if args.list:
        for need in needed:
            print(f"set-up {need}:")
            print("\n".join(_shown(step, places) for step in PREPARED[need]))
        for run in runs:
            print(f"{run.figure}" + (f" (needs {', '.join(run.needs)})" if run.needs else "") + ":")
            print("\n".join(_shown(step, places) for step in run.steps))
        return 0
    logs.mkdir(parents=True, exist_ok=True)
    (args.work / "out").mkdir(parents=True, exist_ok=True)
    maker = _Maker(places, logs, _Log(logs, REPO))
    for need in needed:  # first, as the published runs made them
        maker.prepare(need)
    failed = []
    for run in runs:
        why = maker.measure(run)
        print(f"{run.figure}: {'NOT measured, ' + why if why else 'measured'}", flush=True)
        if why:
            failed.append(run.figure)
    print(f"logs in {logs}; read them into bench/HISTORY.md as bench/README.md says")
    if failed:
        print(f"NOT measured: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
