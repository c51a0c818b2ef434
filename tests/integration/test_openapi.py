"""The served OpenAPI document names the API key scheme and the error shape, and the
hub's real error answers have that shape."""

from __future__ import annotations

import httpx

from hub.schemas import ErrorOut


async def test_served_document_declares_bearer_and_error_out(client: httpx.AsyncClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    send = document["paths"]["/api/v1/send"]["post"]
    assert {"bearerAuth": []} in send["security"]
    for code in ("401", "422"):
        schema = send["responses"][code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}


async def test_real_errors_match_the_declared_shape(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    unauthenticated = await client.post("/api/v1/send", json={"to": "+15550001234"})
    assert unauthenticated.status_code == 401
    assert ErrorOut.model_validate(unauthenticated.json()).error.code == "missing_api_key"
    invalid = await client.post("/api/v1/send", json={"to": "+15550001234"}, headers=api_headers)
    assert invalid.status_code == 422
    assert ErrorOut.model_validate(invalid.json()).error.code == "validation_error"
    unknown = await client.get("/api/v1/messages/msg_nope", headers=api_headers)
    assert unknown.status_code == 404
    assert ErrorOut.model_validate(unknown.json()).error.message
