"""Errors to JSON, in one table: each package's errors mapped to a status code and a code.

Every error answer has the one shape of :class:`api.schemas.errors.ErrorResponse`. Lower
packages raise their own root errors (``CatalogError``, ``RetrievalError``,
``GenerationError``) naming the bad value; this module is the only place that knows which HTTP
status each one means. Starlette picks the most specific handler along the exception's MRO, so
a subclass listed here wins over its root.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from generation.errors import GenerationError
from index.errors import (
    CatalogError,
    ConversationConflictError,
    ConversationNotFoundError,
    DecodeError,
)
from retrieval.errors import RetrievalError
from retrieval.search import InvalidQueryError, TrackNotFoundError

log = logging.getLogger(__name__)

#: (exception type, HTTP status, stable error code)
ERROR_TABLE: tuple[tuple[type[Exception], int, str], ...] = (
    (TrackNotFoundError, 404, "not_found"),
    (InvalidQueryError, 422, "invalid_request"),
    (RetrievalError, 400, "retrieval_error"),
    (DecodeError, 422, "bad_audio"),
    (ConversationNotFoundError, 404, "not_found"),
    (ConversationConflictError, 409, "conflict"),
    (CatalogError, 400, "catalog_error"),
    (GenerationError, 400, "generation_error"),
)

HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "too_large", 416: "bad_range"}


def error_json(status: int, code: str, detail: str, headers: dict[str, str] | None = None
               ) -> JSONResponse:
    """The error format: ``{"error": code, "detail": detail}``."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _table_handler(status: int, code: str):  # noqa: ANN202 - a Starlette exception handler
    def handle(_: Request, e: Exception) -> JSONResponse:
        return error_json(status, code, str(e))

    return handle


def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
    parts = []
    for x in e.errors():
        # Pydantic names union members in the location ("function-before[not_bool(), int]",
        # with object addresses): callers need the field path, not our validator internals.
        where = ".".join(str(p) for p in x.get("loc", ()) if p != "body" and not
                         any(c in str(p) for c in "[(<")) or "request"
        parts.append(f"{where}: {x.get('msg', 'invalid')}")
    return error_json(422, "invalid_request", "; ".join(parts)[:2000])


def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
    headers = dict(getattr(e, "headers", None) or {})
    if e.status_code == 405:
        # Starlette names only the methods of the first route matching the path; a resource
        # served by several routes (GET and DELETE /v1/tracks/{id}) must list them all.
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_json(e.status_code, HTTP_CODES.get(e.status_code, "error"), str(e.detail),
                      headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at this request's path."""
    methods: set[str] = set()
    scope = {**request.scope, "method": "GET"}
    for route in request.app.router.routes:
        if isinstance(route, BaseRoute) and route.matches(scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _internal(request: Request, e: Exception) -> JSONResponse:
    # A bug, not bad input: log the traceback for us, tell the caller nothing internal.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=e)
    return error_json(500, "internal", "internal server error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    """Register :data:`ERROR_TABLE`, the request-validation, HTTP and last-resort handlers.

    Only the errors listed are answered as the caller's fault. A bare ``ValueError`` is not in
    the table on purpose: one escaping a library is a bug to fix where it is raised (it used to
    become a 422 that quoted numpy), so it is a logged 500 in the one error format.
    """
    for exc_type, status, code in ERROR_TABLE:
        app.add_exception_handler(exc_type, _table_handler(status, code))
    app.add_exception_handler(Exception, _internal)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
