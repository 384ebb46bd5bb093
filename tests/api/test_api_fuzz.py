"""Schemathesis fuzzes every operation of the OpenAPI spec: no input may produce a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from tests.api.conftest import API_KEY, build_catalog  # noqa: E402
from tests.api.tiny_encoder import TinyEncoder  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    home = tmp_path_factory.mktemp("fuzz")
    build_catalog(home, n=8)
    return create_app(Settings(home=home, api_key=API_KEY), encoder=TinyEncoder())


def test_no_server_errors(fuzz_app) -> None:  # noqa: ANN001
    """Every operation, ``max_examples`` generated cases each, with and without the key."""
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 8

    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # noqa: ANN001
            # Every other case carries the key, so writes are fuzzed past the auth check too.
            headers = {"X-API-Key": API_KEY} if len(repr(case.query)) % 2 else {}
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.path, case.path_parameters,
                                                case.query, response.text)
            if response.status_code >= 400:
                assert response.json()["detail"], response.text

        check()
