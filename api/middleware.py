"""ASGI middleware: body-size limits, security headers, and metrics that see server errors.

Pure ASGI (not ``BaseHTTPMiddleware``) for two reasons: a request body can be refused while it
streams in, before anything is parsed, and an exception raised by a route still passes through
here on its way to the 500 handler, so server errors are counted like every other answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The page and its assets: a strict policy, everything from this origin (audio may be a blob).
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-resource-policy", b"same-origin")]
# FastAPI's interactive docs load their scripts from a CDN: the page policy would blank them.
_NO_CSP_PATHS = ("/docs", "/redoc")


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.

    An ``HTTPException`` on purpose: FastAPI turns any other exception raised while it reads a
    body into a 400 "error parsing the body"; this one it lets through to the 413 handler.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


async def send_json_error(send: Send, status: int, code: str, detail: str) -> None:
    """Answer in the API's one error format without going through the app."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse request bodies over a limit before they are parsed.

    Multipart uploads get ``upload_limits[path]`` (a search clip needs far less room than a
    track), else ``upload_limit``; every other body (JSON) gets ``json_limit``. A declared
    ``Content-Length`` over the limit is refused before a byte is read; a chunked body is
    counted as it streams and cut off at the limit.
    """

    def __init__(self, app: ASGIApp, *, json_limit: int, upload_limit: int,
                 upload_limits: dict[str, int] | None = None) -> None:
        self.app, self.json_limit, self.upload_limit = app, json_limit, upload_limit
        self.upload_limits = dict(upload_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (non-HTTP scopes pass through untouched)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = (self.upload_limits.get(scope.get("path", ""), self.upload_limit) if multipart
                 else self.json_limit)
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await send_json_error(send, 413, "too_large", f"request body over {limit} bytes "
                                  f"(Content-Length {declared.decode('latin-1')[:20]})")
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await send_json_error(send, 413, "too_large", f"request body over {limit} bytes")


class SecurityHeadersMiddleware:
    """``nosniff``, no framing, no referrer on every answer; a strict CSP on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (non-HTTP scopes pass through untouched)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = not scope.get("path", "").startswith(_NO_CSP_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in SECURITY_HEADERS if h[0] not in present]
                if csp and b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", PAGE_CSP.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class MetricsMiddleware:
    """Count and time every request by route and status, errors included.

    ``observe(method, route, status, seconds)`` is called once per request. When the app
    raises (a bug: the 500 handler answers outside this middleware), the request is counted as
    a 500 and the exception goes on to that handler.
    """

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int, float], None]) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (non-HTTP scopes pass through untouched)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            status = 500
            raise
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.observe(scope.get("method", ""), route, status, time.perf_counter() - t0)


MAX_JSON_BYTES = 2**20  # the largest valid recommend body is ~60 KB


def install_middleware(app: FastAPI) -> None:
    """Body limits (per route for uploads) inside the security headers, on a FastAPI ``app``."""
    from api.uploads import MAX_QUERY_UPLOAD_BYTES, MAX_UPLOAD_BYTES

    app.add_middleware(BodyLimitMiddleware, json_limit=MAX_JSON_BYTES,  # + multipart framing:
                       upload_limit=MAX_UPLOAD_BYTES + 2**20,
                       upload_limits={"/v1/search/audio": MAX_QUERY_UPLOAD_BYTES + 2**16,
                                      "/v1/conversations/audio": MAX_QUERY_UPLOAD_BYTES + 2**16})
    app.add_middleware(SecurityHeadersMiddleware)
