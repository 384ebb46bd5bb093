"""The HTTP server's protocol: uvicorn's httptools protocol, with JSON for its own errors.

A request the HTTP parser cannot take (a 100 KB URL, a malformed header line) never reaches
the app: uvicorn answers a plain-text 400 itself. Every error of this API is JSON in one
format, so this subclass answers those in it too.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.middleware import SECURITY_HEADERS


class JsonErrorHttpProtocol(HttpToolsProtocol):
    """``uvicorn.run(app, http=JsonErrorHttpProtocol)``."""

    def send_400_response(self, msg: str) -> None:
        """The parser refused the request: answer ``{"error", "detail"}`` and close."""
        body = json.dumps({"error": "bad_request", "detail": "malformed HTTP request: the "
                           "request line or a header is invalid or too long (URLs and headers "
                           f"are limited to about 64 KB): {msg}"}).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in [*self.server_state.default_headers, *SECURITY_HEADERS]:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend([b"content-type: application/json\r\n",
                     b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                     b"connection: close\r\n", b"\r\n"])
        self.transport.write(b"".join(head) + body)
        self.transport.close()
