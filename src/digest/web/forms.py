"""Reading a request body as fields, whatever form it came in: urlencoded, multipart or JSON.

Routes read bodies here rather than through FastAPI's ``Form`` parameters, so that a body over
the size cap answers 413 and a body in another format 415 (FastAPI would say 400 or 422).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import UploadFile

from digest.errors import InvalidInput, UnsupportedMediaType

Fields = dict[str, list[str]]

MAX_FIELDS = 100
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def media_type(request: Request) -> str:
    """The request's content type without parameters, lower-cased."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_fields(request: Request, *, allow_json: bool = True) -> Fields:
    """The body's fields as name -> list of values (a checkbox group gives several)."""
    kind = media_type(request)
    if kind == URLENCODED:
        return parse_urlencoded(await request.body())
    if kind == MULTIPART:
        fields: Fields = {}
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            for key, value in form.multi_items():
                if not isinstance(value, UploadFile):
                    fields.setdefault(key, []).append(value)
        return fields
    if allow_json and (kind == "application/json" or kind.endswith("+json")):
        return parse_json(await request.body())
    accepted = f"{URLENCODED}, {MULTIPART}" + (" or application/json" if allow_json else "")
    raise UnsupportedMediaType(f"send the form as {accepted}")


def parse_urlencoded(body: bytes) -> Fields:
    """Fields of an ``application/x-www-form-urlencoded`` body; bad UTF-8 is refused."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form could not be read (too many fields, or not UTF-8)") from None
    fields: Fields = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    return fields


def parse_json(body: bytes) -> Fields:
    """Fields of a JSON object: strings, numbers and lists of them; nothing nested deeper."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    if len(data) > MAX_FIELDS:
        raise InvalidInput("too many fields")
    fields: Fields = {}
    for key, value in data.items():
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, dict | list):
                raise InvalidInput(f"{key}: must be a string or a list of strings")
            out.append(item if isinstance(item, str) else json.dumps(item))
        fields[key] = out
    return fields


def first(fields: Fields, name: str) -> str | None:
    """The first value of a field, or None when absent."""
    values = fields.get(name)
    return values[0] if values else None
