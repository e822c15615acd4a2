"""The HTTP side of the API's requests: JSON answers and errors, query and body parsing, SSE framing.

Every problem with a request is an :class:`ApiError`, answered ``{"error": "<one line>"}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


class ApiError(Exception):
    """A request answered with ``{"error": message}`` and ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AckBody(Body):
    comment: str = Field(min_length=1)


class ReasonBody(Body):
    reason: str = Field(min_length=1)


class BindBody(Body):
    equipment_id: str = Field(min_length=1)
    lot_id: str = Field(min_length=1)
    coi_id: str | None = None
    dins: list[str] = Field(default_factory=list)
    process_step: str | None = None
    reason: str = Field(min_length=1)


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=JSON_OPTIONS), status=status,
                        content_type="application/json")


async def send_event(response: web.StreamResponse, name: str, data: Any) -> None:
    await response.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data, option=JSON_OPTIONS) + b"\n\n")


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def int_query(request: web.Request, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    if not _whole(raw) or int(raw) < minimum or (maximum is not None and int(raw) > maximum):
        bounds = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(400, f"{name} must be a whole number {bounds}, not {raw!r}")
    return int(raw)


def choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str:
    value = request.query.get(name) or allowed[0]
    if value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not _whole(raw):
        raise ApiError(400, f"{name} must be a record's seq (a whole number), not {raw!r}")
    return int(raw)


async def read_body(request: web.Request, model: type[Body]) -> Any:
    try:
        data = await request.json(loads=orjson.loads)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ApiError(400, f"{where}: {message}" if where else message) from None


def _whole(raw: str) -> bool:
    """ASCII digits that fit SQLite's integer (``"²".isdigit()`` is true, and 10**20 overflows it)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 18
