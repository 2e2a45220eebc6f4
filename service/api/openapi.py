"""The OpenAPI document, with the errors every operation can really answer.

FastAPI documents only the success and a 422 with its own error shape. Our errors are RFC
9457 problems (`service/api/errors.py`), and which ones an operation can return follows from
what it takes: a token (401, 403, 429), path parameters (404), a body (413, 415, 422), and
any operation may meet a database outage (503). They are added here, once, so clients and
schema-driven tests (tests/security/test_fuzz.py) see the real contract.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.api.errors import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; validation problems add `errors`.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
DESCRIPTIONS = {
    400: "The client went away or sent an unreadable request.",
    401: "Missing, unknown or revoked bearer token.",
    403: "The token may not do this (a device token outside its own deployment).",
    404: "No such resource.",
    405: "Method not allowed.",
    409: "Conflict with the resource's current state.",
    413: "The body is larger than the configured limit.",
    415: "Unsupported content type.",
    416: "Range not satisfiable.",
    422: "The request is well-formed but its content is not acceptable.",
    429: "Too many failed authentications from this address; see Retry-After.",
    503: "A dependency (database, broker) is unavailable; retry later.",
}
_BODY_METHODS = frozenset({"post", "put", "patch"})


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _statuses(method: str, operation: dict[str, Any]) -> set[int]:
    statuses = {503}
    if operation.get("security"):
        statuses |= {401, 403, 429}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters:
        statuses.add(422)
    if method in _BODY_METHODS:
        # Any body may be too large, of the wrong type, or malformed, even where none is
        # expected (the size limit applies before routing).
        statuses |= {400, 413, 415, 422}
    return statuses


def _add_problems(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    # FastAPI's own error shapes are never sent: validation errors are problems too.
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in _statuses(method, operation):
                responses[str(status)] = _problem(status)
            # Statuses a route documented by hand (409, 416, ...) are problems as well.
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400:
                    description = response.get("description") or DESCRIPTIONS.get(int(code))
                    responses[code] = {**_problem(int(code)), "description": description}


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's own, which caches the document per route set

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not schema.get("x-edgeprune-problems"):
            _add_problems(schema)
            schema["x-edgeprune-problems"] = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
