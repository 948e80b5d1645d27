"""Schema fuzzing of the HTTP API (issue 15): requests generated from the app's own OpenAPI
schema never get a 5xx, and every response matches the schema it publishes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from pictures import photo_folder

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from schemathesis.checks import positive_data_acceptance  # noqa: E402

from searchclip import SearchEngine  # noqa: E402
from searchclip.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake_model_dir):
    root = tmp_path_factory.mktemp("fuzzed")
    photo_folder(root / "photos", 12)
    engine = SearchEngine(root / "index", model=str(fake_model_dir))
    engine.index(root / "photos")
    yield create_app(engine)
    engine.close()


def test_no_request_gets_a_5xx_or_breaks_the_schema(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, case.query, response.text)
            # Every check but one: the schema cannot say that a search needs a term, or what
            # a date looks like; such requests get a 400 with a message (test_server_api.py).
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
