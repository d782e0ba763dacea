"""The tests of guanxi, mirroring its packages.

Importing this package, before pytest reads ``tests/conftest.py`` and the project modules it
imports, unsets the settings a developer's shell exports (:func:`_unset_shell_settings`). Any
process that imports from it does so too: the benches that start servers with
:mod:`tests.processes` (bench.serve, bench.load, bench.sources) run without the shell's
``GUANXI_*`` and MLflow settings, as bench.remeasure starts every step.
"""

import os

TEST_SWITCHES = frozenset(
    {"GUANXI_FUZZ_SEED", "GUANXI_LOAD_CUSTOMERS", "GUANXI_LOAD_SECONDS", "GUANXI_UPDATE_DOCS"}
)
"""The ``GUANXI_*`` variables the tests themselves read: the only ones a shell passes on."""


def _unset_shell_settings() -> None:
    """Run the tests without the settings a developer's shell exports.

    Every ``GUANXI_*`` setting (the server's settings read the prefix) and the terminal's width
    change what the code under test does: run from a shell that exports ``GUANXI_STORE_KEY``, as
    one does beside a server, the tests of unsigned stores failed with the code right (review37),
    and an exported ``TERMINAL_WIDTH`` or ``COLUMNS`` rewrapped the messages tests read at the
    80 columns CI has. Tests that want one set it; :data:`TEST_SWITCHES` stay.
    """
    for name in list(os.environ):
        shell_setting = name.startswith("GUANXI_") and name not in TEST_SWITCHES
        if shell_setting or name in {"TERMINAL_WIDTH", "COLUMNS", "MLFLOW_TRACKING_URI"}:
            del os.environ[name]


_unset_shell_settings()
