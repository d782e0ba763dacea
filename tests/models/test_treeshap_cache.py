"""Where numba caches TreeSHAP's kernels when it cannot write beside the module.

Numba's own place is ``__pycache__`` next to :mod:`models.treeshap`; an install it cannot write
to (read-only, as in many containers) must still give the next process compiled kernels. A
``__pycache__`` that is a file stands for that directory here: no user can write into it, root
included (the tests may run as root, for whom permission bits change nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from models import treeshap
from models.treeshap import numba_cache_dir


def _unwritable_module_dir(tmp_path: Path) -> Path:
    here = tmp_path / "package"
    here.mkdir()
    (here / "__pycache__").write_text("not a directory")
    return here


def test_numba_needs_no_help_when_it_can_write_beside_the_module(tmp_path: Path) -> None:
    assert numba_cache_dir(tmp_path, {"GUANXI_HOME": str(tmp_path / "home")}) is None
    assert (tmp_path / "__pycache__").is_dir()


def test_a_set_numba_cache_dir_is_left_to_numba(tmp_path: Path) -> None:
    here = _unwritable_module_dir(tmp_path)
    environ = {"NUMBA_CACHE_DIR": str(tmp_path / "mine"), "GUANXI_HOME": str(tmp_path / "home")}
    assert numba_cache_dir(here, environ) is None


def test_an_unwritable_module_caches_under_guanxi_home_then_the_user_cache(
    tmp_path: Path,
) -> None:
    here = _unwritable_module_dir(tmp_path)
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    environ = {"GUANXI_HOME": str(home), "XDG_CACHE_HOME": str(xdg)}
    assert numba_cache_dir(here, environ) == home / "cache" / "numba"
    assert numba_cache_dir(here, {"XDG_CACHE_HOME": str(xdg)}) == xdg / "guanxi" / "numba"
    user = tmp_path / "user"
    assert numba_cache_dir(here, {"HOME": str(user)}) == user / ".cache" / "guanxi" / "numba"
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a directory")
    nowhere = {"GUANXI_HOME": str(blocked), "XDG_CACHE_HOME": str(blocked)}
    expected = Path(tempfile.gettempdir()) / f"guanxi-numba-{os.getuid()}"
    assert numba_cache_dir(here, nowhere) == expected.absolute()
    # a container's user with no home and no GUANXI_HOME: the temporary directory, no error
    assert numba_cache_dir(here, {}) == expected.absolute()


WARM_UP = (
    "import json, treeshap; w = treeshap.warm_up(); "
    "print(json.dumps([w.compiled, w.cache_path, w.in_process]))"
)


def test_a_second_process_of_an_unwritable_install_starts_warm(tmp_path: Path) -> None:
    here = _unwritable_module_dir(tmp_path)
    shutil.copy(Path(treeshap.__file__), here / "treeshap.py")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env |= {"PYTHONPATH": str(here), "GUANXI_HOME": str(home)}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", WARM_UP],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    (compiled, cache, warm), (again, cache_again, warm_again) = runs
    assert compiled == 2 and again == 0  # the second process loaded both kernels
    assert not warm and not warm_again  # a new process has nothing compiled: it ran them
    assert Path(cache).is_relative_to(home / "cache" / "numba") and cache_again == cache
    assert list(Path(cache).glob("treeshap._row_kernel-*.nbc"))
