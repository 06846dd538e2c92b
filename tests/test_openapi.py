"""The OpenAPI document: valid, and the running service matches it under schemathesis' fuzzing
(bounded examples): no 5xx, every response as documented."""
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate

MAX_EXAMPLES = 15  # per operation: keeps this file to well under a minute


def test_document_is_valid_openapi(server):
    doc = requests.get(server.url + "/api/openapi.json", timeout=10).json()
    validate(doc)
    assert "/api/model/service/binary" in doc["paths"] and "/v1/vision/detection" in doc["paths"]


@pytest.fixture(scope="module")
def schema(fast_server):
    return schemathesis.openapi.from_url(fast_server.url + "/api/openapi.json")


@pytest.fixture(scope="module")
def fast_server(start_server, fast_model_dir):
    return start_server(model_dir=fast_model_dir)


def test_service_matches_its_document(schema, fast_server):
    from hypothesis import given
    from schemathesis import checks

    failures, calls = [], [0]
    for op in schema.get_all_operations():
        op = op.ok()
        if op.path == "/api/models/reload":
            continue  # fuzzing it would only reload the same folder again and again

        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            calls[0] += 1
            response = case.call(base_url=fast_server.url, timeout=30)
            case.validate_response(response, checks=[checks.not_a_server_error,
                                                     checks.response_schema_conformance,
                                                     checks.content_type_conformance])

        try:
            run()
        except Exception as e:  # collect: one report names every operation that fails
            failures.append("%s %s: %s" % (op.method.upper(), op.path, str(e)[:800]))
    print("schemathesis: %d calls" % calls[0])
    assert not failures, "\n".join(failures)
    assert calls[0] >= 10 * MAX_EXAMPLES // 2  # the fuzzing really ran
    assert requests.get(fast_server.url + "/api/health", timeout=5).status_code == 200  # still serving
