"""tests/constraints.txt pins the test install (tests/install.sh) and never contradicts pyproject.

The pins make one commit install the same versions on every clean clone; pyproject's ranges stay
what users get from ``pip install guanxi``. A pin outside its range would make the install fail,
or test a version users can never get; a requirement without a pin would float again.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "tests" / "constraints.txt"
EXTRAS = ("test", "spark")
"""The extras tests/install.sh installs (``-e '.[test,spark]'``)."""
REFRESH = "see README, Testing, to refresh tests/constraints.txt"


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"not an exact pin: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{name} pinned twice"
        pins[name] = Version(match[2])
    return pins


def _requirements() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    extras = project["optional-dependencies"]
    build = pyproject["build-system"]["requires"]
    return [
        Requirement(r)
        for r in [*project["dependencies"], *(r for e in EXTRAS for r in extras[e]), *build]
    ]


def test_the_install_uses_the_pins() -> None:
    install = (ROOT / "tests" / "install.sh").read_text()
    assert "-c tests/constraints.txt -e '.[test,spark]'" in install


def test_the_build_of_the_project_uses_the_pins() -> None:
    """pip passes ``-c`` to no isolated build; the build's own pip reads PIP_CONSTRAINT."""
    install = (ROOT / "tests" / "install.sh").read_text()
    assert 'PIP_CONSTRAINT="$PWD/tests/constraints.txt" \\\n  .venv/bin/pip install' in install


def _mismatches(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """Each requirement without a pin, or pinned outside its range."""
    wrong = []
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            wrong.append(f"{requirement} has no pin")
        elif not requirement.specifier.contains(pin, prereleases=True):
            wrong.append(f"{requirement} but pinned {pin}")
    return wrong


def test_every_requirement_is_pinned_within_its_range() -> None:
    pins = _pins()
    assert "guanxi" not in pins
    wrong = _mismatches(_requirements(), pins)
    assert not wrong, f"{'; '.join(wrong)} ({REFRESH})"


def test_a_pin_outside_its_range_or_a_missing_pin_is_seen() -> None:
    requirements = [Requirement("pyspark>=4.0,<5"), Requirement("uvicorn[standard]>=0.30")]
    assert (
        _mismatches(requirements, {"pyspark": Version("4.1.1"), "uvicorn": Version("0.30")}) == []
    )
    assert _mismatches(requirements, {"pyspark": Version("5.0.0")}) == [
        "pyspark<5,>=4.0 but pinned 5.0.0",
        "uvicorn[standard]>=0.30 has no pin",
    ]
