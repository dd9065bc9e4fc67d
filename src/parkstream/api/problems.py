"""RFC 9457 problem details (``application/problem+json``) for every error the API returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from parkstream.logging import get_logger

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://parkstream.dev/problems/"

log = get_logger("parkstream.api")


class InvalidParam(BaseModel):
    name: str = Field(description="The field, as a dotted path (body.starts_at, query.limit).")
    reason: str


class Problem(BaseModel):
    """An error, as RFC 9457 describes it."""

    type: str = Field(examples=[TYPE_BASE + "not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(default="", examples=["no space 'spc-1' in this tenant"])
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(
        default=None, alias="invalid-params", serialization_alias="invalid-params"
    )
    conflicting_reservation_id: str | None = None


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers
        self.extra = extra


def invalid(name: str, reason: str, detail: str | None = None) -> ApiProblem:
    """A 422 naming the bad field (``body.ends_at``, ``query.cursor``, ``header.X``)."""
    params: Any = [{"name": name, "reason": reason}]
    return ApiProblem(
        422, "invalid-request", detail or f"{name}: {reason}", **{"invalid-params": params}
    )


def with_offset(value: Any, name: str) -> Any:
    """``value`` (a datetime or None) if it names its UTC offset; a 422 naming ``query.name``
    otherwise (a time without an offset means nothing to a server in another zone)."""
    if value is not None and getattr(value, "tzinfo", None) is None:
        raise invalid(f"query.{name}", "no time zone", f"query.{name}: needs a time zone offset")
    return value


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "not-found", f"no {what} in this tenant")


def problem_response(
    request: Request,
    status: int,
    slug: str,
    detail: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "rate-limited",
}


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(request, exc.status, exc.slug, exc.detail, exc.headers, **exc.extra)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = _SLUGS.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(
            request, exc.status_code, slug, detail, dict(exc.headers or {}) or None
        )

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        params = [
            {"name": _where(tuple(e.get("loc", ()))), "reason": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params[:5])
        extra: dict[str, Any] = {"invalid-params": params}
        return problem_response(request, 422, "invalid-request", detail, None, **extra)

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("a dependency is unavailable", path=request.url.path, error=repr(exc))
        return problem_response(
            request,
            503,
            "unavailable",
            "the event broker or the database is unavailable; retry later",
            {"Retry-After": "5"},
        )

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", path=request.url.path, error=repr(exc))
        return problem_response(request, 500, "internal-error", "the request could not be served")

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    from aiokafka.errors import KafkaError
    from asyncpg.exceptions import CannotConnectNowError, ConnectionDoesNotExistError

    for unavailable in (
        KafkaError,
        CannotConnectNowError,
        ConnectionDoesNotExistError,
        ConnectionError,
        TimeoutError,
    ):
        app.add_exception_handler(unavailable, on_unavailable)
    app.add_exception_handler(Exception, on_crash)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem documents a route can return."""
    return {
        code: {
            "model": Problem,
            "description": HTTPStatus(code).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }
