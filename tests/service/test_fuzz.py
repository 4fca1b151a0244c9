"""Fuzz every operation of the published OpenAPI schema (schemathesis, in-process ASGI): no 5xx, and every
response is documented and matches its schema. Bounded: a fixed number of derandomized examples per operation."""

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from glmimage.service.app import create_app
from glmimage.service.settings import Settings

# Valid generations run the real engine: keep them to one step and at most two images.
POLICY = """
name: fuzz
parameters:
  steps:      {settable: true, min: 1, max: 1, default: 1}
  guidance:   {settable: true, min: 0.0, max: 5.0, default: 1.5}
  size:       {settable: true, min: 64, max: 96, default: null}
  seed:       {settable: true, min: 0, max: 4294967295, default: null}
  num_images: {settable: true, min: 1, max: 2, default: 1}
"""


@pytest.fixture(scope="module")
def fuzz_app(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "policy.yaml").write_text(POLICY)
    app = create_app(Settings(model="tiny", data_dir=root, ocr=False, log_json=False,
                              parameter_policy=str(root / "policy.yaml"), batch_max_images=2),
                     engine=engine, text_checker=None)
    with TestClient(app):
        yield app


def test_api_never_fails_on_generated_input(fuzz_app):
    key = fuzz_app.state.services.bootstrap_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(headers={"Authorization": f"Bearer {key}"})
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     response_schema_conformance])

        check()  # a failure prints the case as a curl command, method and path included
