"""API fuzzing with schemathesis: every operation, every role, valid and invalid data.

Schemathesis reads the app's own OpenAPI document and generates requests from it (positive data
that fits the schema, negative data that does not), sent in-process to the ASGI app with the
lifespan running. Every response must be no 5xx, have a status code, content type and headers the
schema declares, and a body that conforms to the declared response schema.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serving.conftest import KEYS

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ROLES: dict[str, dict[str, str]] = {
    "none": {},
    "unknown": {"X-API-Key": "not-a-configured-key-0123"},
    **{role: {"X-API-Key": key} for role, key in KEYS.items()},
}
# examples per (operation, role, mode): full for the keys that reach the handlers
EXAMPLES = {"scorer": 110, "reviewer": 25, "admin": 60, "none": 8, "unknown": 8}
MIN_REQUESTS = 2000


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
    sent: Counter[int],
) -> None:
    """Send up to ``examples`` generated requests to one operation and check every response."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        sent[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:
        # no input of the operation can be made invalid (no parameters, no body)
        if mode is GenerationMode.POSITIVE:
            raise


@pytest.mark.slow
def test_fuzz_every_operation_and_role(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ready = schema["/readyz"]["GET"]
    for _ in range(400):
        if ready.Case().call().status_code == 200:
            break
    else:
        raise AssertionError("the app did not become ready")

    sent: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/v1/scores", "/v1/score", "/healthz"}
    for operation in operations:
        for role, headers in ROLES.items():
            for mode in GenerationMode:
                _fuzz(operation, mode, headers, EXAMPLES[role], sent)
    print(f"\nfuzzed {sum(sent.values())} requests; status codes {dict(sorted(sent.items()))}")
    assert not any(code >= 500 for code in sent)
    assert sum(sent.values()) >= MIN_REQUESTS
