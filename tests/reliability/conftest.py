"""Fixtures of the reliability tests: the serving fixtures, reused as they are.

The app, the static source, the tiny models and the SQLite registry come from
``tests/serving/conftest.py``; importing them here makes pytest offer them to these tests too.
"""

from __future__ import annotations

from tests.serving.conftest import (  # noqa: F401  (fixtures, registered by import)
    app,
    bundles,
    client,
    loaded_snapshot,
    overflow_in_cast_is_an_error,
    registry_env,
    registry_setup,
    served,
    settings,
    snapshot,
    source,
)
