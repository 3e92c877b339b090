"""JSON request bodies parsed as a dependency, so that authentication (declared before it) always
runs first: a caller without a valid token learns nothing about how their body would have fared."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from services.errors import APIError, describe_errors

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise APIError(400, "request body is empty")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(400, "request body is not valid JSON", code="structure") from None
    except RecursionError:
        raise APIError(400, "request body is nested too deeply", code="structure") from None


def json_body(
    model: type[M], check: Callable[[Any], None] | None = None
) -> Callable[[Request], Awaitable[M]]:
    """A dependency returning the body validated as `model` (400 bad JSON, 422 invalid). `check`,
    when given, sees the parsed JSON first and raises APIError for a rule the schema cannot say."""

    async def parse(request: Request) -> M:
        data = await read_json(request)
        if check is not None:
            check(data)
        try:
            return model.model_validate(data)
        except ValidationError as err:
            raise APIError(
                422, f"request failed validation: {describe_errors(err.errors())}", code="invalid"
            ) from None

    return parse


# Component schemas referenced by `body_schema` documents; `create_app` merges them into OpenAPI.
BODY_COMPONENTS: dict[str, Any] = {}


def body_schema(model: type[BaseModel] | None = None, media_type: str = "application/json") -> dict[str, Any]:
    """`openapi_extra` documenting a body that a dependency, not FastAPI, parses."""
    if model is None:
        schema: dict[str, Any] = {"type": "object"}
    else:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        BODY_COMPONENTS.update(schema.pop("$defs", {}))
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}
