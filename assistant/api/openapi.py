"""The OpenAPI schema as the gateway really answers (checked by the fuzz tests,
``tests/integration/test_fuzz_api.py``):

* errors are ``{"detail": "<Chinese text>", "errors"?: [...]}``
  (``ErrorResponse``), so the 422 that FastAPI documents by default
  (``HTTPValidationError``, a list in ``detail``) is replaced by it;
* pydantic 1 leaves ``null`` out of the schema of ``Optional`` fields, which the
  answers do send (``"item": null``): such properties also allow ``null``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Set, Type

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from assistant.api.schemas import ErrorResponse

DEFAULT_422 = "#/components/schemas/HTTPValidationError"
ERROR_REF = f"#/components/schemas/{ErrorResponse.__name__}"


def _models(app: FastAPI) -> Iterator[Type[BaseModel]]:
    """Every pydantic model the routes use (bodies, answers, declared responses), nested ones too."""
    seen: Set[type] = set()
    stack = [ErrorResponse]
    for route in app.routes:
        for candidate in (getattr(route, "response_model", None), getattr(getattr(route, "body_field", None), "type_", None)):
            stack.append(candidate)
        for response in (getattr(route, "responses", None) or {}).values():
            stack.append(response.get("model") if isinstance(response, dict) else None)
    while stack:
        model = stack.pop()
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or model in seen:
            continue
        seen.add(model)
        yield model
        for field in model.__fields__.values():
            stack.append(field.type_)
            for sub in field.sub_fields or ():
                stack.append(sub.type_)


def _allow_null(schema: Dict[str, Any], app: FastAPI) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for model in _models(app):
        properties = components.get(model.__name__, {}).get("properties", {})
        for field in model.__fields__.values():
            prop = properties.get(field.alias)
            if field.allow_none and prop is not None and "anyOf" not in prop:
                properties[field.alias] = {"anyOf": [prop, {"type": "null"}]}


def _errors_are_error_responses(schema: Dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") == DEFAULT_422:
                    content["schema"] = {"$ref": ERROR_REF}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault(ErrorResponse.__name__, ErrorResponse.schema(ref_template="#/components/schemas/{model}"))


def install(app: FastAPI) -> None:
    """Serve the corrected schema at ``/openapi.json`` (built once, on first use)."""

    def openapi() -> Dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes,
            )
            _errors_are_error_responses(schema)
            _allow_null(schema, app)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
