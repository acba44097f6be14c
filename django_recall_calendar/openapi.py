"""The statuses every operation of the REST API can answer besides its own, in its OpenAPI document.

drf-spectacular documents what a view returns; the answers of DRF's machinery around it (not
signed in, another user's object, a bad query, a throttle) it leaves out, so a schema-driven client
or fuzzer would meet statuses the document never mentions. This postprocessing hook adds them.
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "put", "patch", "post", "delete")

DETAIL = {"$ref": "#/components/schemas/ErrorDetail"}
ERROR_SCHEMAS = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationErrors": {
        "type": "object",
        "description": 'Messages by field, e.g. {"start_after": ["..."]}, or {"detail": "..."}.',
        "additionalProperties": True,
    },
}


def _response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _answers(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statuses DRF may answer for ``operation`` before or around its view."""
    parameters = operation.get("parameters", [])
    answers = {
        "401": _response("Not signed in (with authentication that sends a challenge).", DETAIL),
        "403": _response("Not signed in, or not allowed.", DETAIL),
        "429": _response("Too many requests: wait for Retry-After seconds.", DETAIL),
    }
    if any(parameter.get("in") == "path" for parameter in parameters):
        answers["404"] = _response("No such object among the signed-in user's.", DETAIL)
    elif any(parameter.get("name") == "page" for parameter in parameters):
        answers["404"] = _response("No such page.", DETAIL)
    if "requestBody" in operation or any(p.get("in") == "query" for p in parameters):
        schema = {"$ref": "#/components/schemas/ValidationErrors"}
        answers["400"] = _response("Invalid input; the messages say what to change.", schema)
    return answers


def document_error_statuses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the statuses above where a view did not."""
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in _answers(operation).items():
                responses.setdefault(status, response)
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_SCHEMAS)
    return result
