"""Helpers for conformance suites that use a provider's official SDK as the oracle.

Only what several suites do the same way: validating an emulator answer (or a body we
send) against an SDK's pydantic type with no leniency, and the parts of a recorded
request that must match between our client and the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, TypeAdapter


def strictly(sdk_type: Any, data: Any) -> Any:
    """``data`` validated against ``sdk_type`` in pydantic's strict mode, with no field
    the SDK type does not declare, at any depth.

    The SDKs' generated models allow extra fields (so they survive API additions); the
    oracle must not: an extra field is something the emulator (or our client) invented.
    Raises ``pydantic.ValidationError`` or ``AssertionError`` naming the path.
    ``data`` given as JSON text (str / bytes) is validated in JSON mode: still strict, but
    wire formats such as ISO timestamps for ``datetime`` fields are accepted.
    """
    adapter = TypeAdapter(sdk_type)
    if isinstance(data, (str, bytes)):
        value, data = adapter.validate_json(data, strict=True), json.loads(data)
    else:
        value = adapter.validate_python(data, strict=True)
    if not isinstance(value, BaseModel):
        # TypedDicts (request params) drop unknown keys silently: any dropped key is an extra.
        assert value == data, f"fields the SDK type {getattr(sdk_type, '__name__', sdk_type)} does not declare: {data} -> {value}"
        return value
    extras = list(_extras(value, "$"))
    assert not extras, f"fields the SDK type {getattr(sdk_type, '__name__', sdk_type)} does not declare: {extras}"
    return value


def _extras(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        for key in value.model_extra or {}:
            yield f"{path}.{key}"
        for name in type(value).model_fields:
            yield from _extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _extras(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _extras(item, f"{path}.{key}")


def wire(recorded: Any, auth_header: str, *extra_headers: str) -> dict[str, Any]:
    """What must be equal between our client's request and the SDK's: method, path,
    query, the auth header (name and value) and any named version headers."""
    headers = {name.lower(): recorded.headers.get(name) for name in (auth_header, *extra_headers)}
    return {"method": recorded.method, "path": recorded.path, "query": dict(recorded.query), "headers": headers}


def multipart(recorded: Any) -> dict[str, Any]:
    """The text fields and the file part names (with content types) of a recorded multipart request."""
    files = {name: [part.content_type for part in parts] for name, parts in recorded.files.items()}
    return {"fields": dict(recorded.form), "files": files}
