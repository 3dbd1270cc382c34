"""Every operation of the OpenAPI document, fed generated input: bad input is a 4xx, never a server error.

Schemathesis reads the app's own /api/openapi.json and calls it in process (ASGI), as an admin token, so each
mutation is tried for real on a real SQLite file.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.schemas import OpenApiSchema


@pytest.fixture
def api_schema(app: FastAPI, admin_token: str) -> OpenApiSchema:
    service = app.state.cronkeeper.scheduler.service
    service.add_job({"id": "hello", "cron": "*/5 * * * *", "command": ["echo", "hi"]}, by="test-setup")
    app.state.cronkeeper.scheduler.run_service.trigger("hello")
    # A channel nothing listens on: a test message to it fails at once.
    app.state.cronkeeper.scheduler.alerts.add_channel("ops", "json://127.0.0.1:9/hook")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    schema.config.headers = {"Authorization": f"Bearer {admin_token}"}
    return schema


EXISTING = {"job_id": "hello", "run_id": 1, "name": "ops"}


def test_no_input_makes_the_api_fail(api_schema: OpenApiSchema) -> None:
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(checks=[not_a_server_error])
            # Generated ids name nothing; the same input against the job and run that exist reaches the
            # service and the spec layer.
            if case.path_parameters:
                case.path_parameters = {**case.path_parameters, **EXISTING}
                case.call_and_validate(checks=[not_a_server_error])

        call()
