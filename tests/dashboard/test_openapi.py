"""The OpenAPI document: valid OpenAPI 3.1, every endpoint in it, and real responses that match
the schemas it declares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from tests.dashboard.conftest import Town

ENDPOINTS = {"/api/v1/usecases", "/api/v1/usecases/{slug}", "/api/v1/latest",
             "/api/v1/datastreams/{id}/series", "/api/v1/live", "/api/v1/openapi.json",
             "/v1.1/Datastreams({id})/Observations"}


def assert_matches(document: dict, path: str, body: Any) -> None:
    schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    validator = OAS31Validator({**schema["schema"], "components": document["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors[:5]


def test_openapi_document_is_valid_and_describes_the_responses(dash: Town):
    document = dash.ok("/api/v1/openapi.json")
    validate(document)
    assert set(document["paths"]) == ENDPOINTS
    assert document["servers"] == [{"url": dash.server.url}]

    stream = dash.datastream(dash.thing(), "Wasserstand", "cm")
    now = datetime.now(UTC)
    dash.post_many(stream, [(now - timedelta(minutes=m), 100 + m) for m in (50, 30, 10)])
    assert_matches(document, "/api/v1/usecases", dash.ok("/api/v1/usecases", lang="en"))
    assert_matches(document, "/api/v1/usecases/{slug}", dash.ok("/api/v1/usecases/pegel"))
    assert_matches(document, "/api/v1/latest", dash.ok("/api/v1/latest"))
    assert_matches(document, "/api/v1/datastreams/{id}/series",
                   dash.ok(f"/api/v1/datastreams/{stream}/series", interval="PT10M"))
    aggregate = dash.sta.get(f"/Datastreams({stream})/Observations",
                             params={"$aggregate": "PT1H"})
    assert_matches(document, "/v1.1/Datastreams({id})/Observations", aggregate.json())
