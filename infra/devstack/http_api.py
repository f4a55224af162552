"""API Gateway HTTP API for local use: the template's routes, payload format 2.0, Lambda proxy,
the JWT authorizer (identity.py) and CORS as API Gateway answers them."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from . import httpd
from .identity import JwtAuthorizer, Refused
from .runtime import Function, InvocationError
from .template import ACCOUNT

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's own limit
MAX_HEADER_BYTES = 10_240  # the request line and the header values together (HTTP API quotas)
INTEGRATION_TIMEOUT = 30.0  # HTTP API's maximum integration timeout, in seconds
FORBIDDEN_IN_HEADERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,8}")


@dataclass
class Route:
    method: str  # an HTTP method, or ANY
    path: str  # /orders/{orderId}, /{proxy+}
    function: Function
    authorizer: JwtAuthorizer | None = None
    scopes: list[str] = field(default_factory=list)  # the route's AuthorizationScopes

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        pattern = ""
        for segment in self.path.strip("/").split("/"):
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            single = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                pattern += f"/(?P<{greedy.group(1)}>.+)"
            elif single:
                pattern += f"/(?P<{single.group(1)}>[^/]+)"
            elif segment:
                pattern += "/" + re.escape(segment)
        found = re.fullmatch(pattern or "/", path)
        return None if found is None else found.groupdict()

    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal segments, then fewer greedy ones, then a named method."""
        segments = self.path.strip("/").split("/")
        literal = sum(1 for s in segments if not s.startswith("{"))
        greedy = sum(1 for s in segments if s.endswith("+}"))
        return (-greedy, literal, self.method != "ANY")


@dataclass
class Cors:
    """An HTTP API's CorsConfiguration: API Gateway answers preflight requests itself and adds
    the headers to every answer to an allowed origin (the function's own CORS headers are
    ignored)."""
    allow_origins: list[str]
    allow_methods: list[str] = field(default_factory=list)
    allow_headers: list[str] = field(default_factory=list)
    expose_headers: list[str] = field(default_factory=list)
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def of(cls, config: dict[str, Any]) -> Cors:
        known = {"AllowOrigins", "AllowMethods", "AllowHeaders", "ExposeHeaders", "MaxAge",
                 "AllowCredentials"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"CorsConfiguration: devstack does not support {', '.join(sorted(unknown))}")
        return cls([o for o in config.get("AllowOrigins", []) if o],
                   config.get("AllowMethods", []), config.get("AllowHeaders", []),
                   config.get("ExposeHeaders", []),
                   int(config["MaxAge"]) if "MaxAge" in config else None,
                   str(config.get("AllowCredentials", False)).lower() == "true")

    def _origin(self, headers: dict[str, str]) -> str | None:
        origin = headers.get("origin")
        if origin and (origin in self.allow_origins or "*" in self.allow_origins):
            return "*" if "*" in self.allow_origins and not self.allow_credentials else origin
        return None

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        origin = self._origin(headers)
        if origin is None:
            return {}
        answer = {"access-control-allow-origin": origin}
        if self.expose_headers:
            answer["access-control-expose-headers"] = ",".join(self.expose_headers)
        if self.allow_credentials:
            answer["access-control-allow-credentials"] = "true"
        return answer

    def preflight(self, headers: dict[str, str]) -> dict[str, str]:
        answer = self.headers(headers)
        if not answer:
            return {}
        method = headers.get("access-control-request-method", "").upper()
        methods = [m.upper() for m in self.allow_methods]
        if method not in methods and "*" not in methods:
            return {}
        answer["access-control-allow-methods"] = ",".join(self.allow_methods)
        if self.allow_headers:
            answer["access-control-allow-headers"] = ",".join(self.allow_headers)
        if self.max_age is not None:
            answer["access-control-max-age"] = str(self.max_age)
        answer.pop("access-control-expose-headers", None)
        return answer


def request_headers(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    """Header names lower-cased, repeated headers joined with commas, as API Gateway passes them."""
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


# Content types whose bodies API Gateway passes as text (when they are UTF-8); any other body,
# or one without a content type, arrives base64-encoded (docs/conformance.md, "HTTP API payload").
TEXT_TYPES = ("application/json", "application/xml", "application/javascript")


def is_text(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES


def payload(route: Route, handler: BaseHTTPRequestHandler, body: bytes, params: dict,
            authorizer: dict | None = None) -> dict:
    url = urlsplit(handler.path)
    headers = request_headers(handler)
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
        if body and not is_text(headers.get("content-type", "")):
            raise UnicodeDecodeError("utf-8", body, 0, 0, "not a textual content type")
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": handler.command,
                "path": url.path,
                "protocol": handler.request_version,
                "sourceIp": handler.client_address[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params
    if body:
        event["body"] = text
    return event


class HttpApi:
    def __init__(self, routes: list[Route], host: str, port: int, cors: Cors | None = None):
        self.routes = sorted(routes, key=Route.specificity, reverse=True)
        self.cors = cors
        self.server = httpd.serve(self._handler(), host, port)

    def _handler(self):
        api = self

        class Handler(httpd.Handler):
            def _message(self, status: int, message: str, headers: dict | None = None) -> None:
                self.answer(status, json.dumps({"message": message}).encode(),
                            {"Content-Type": "application/json", **(headers or {}), **self.cors_headers})

            def _serve(self) -> None:
                headers = request_headers(self)
                self.cors_headers: dict[str, str] = {}
                header_bytes = len(self.requestline) + sum(len(v) for v in self.headers.values())
                if header_bytes > MAX_HEADER_BYTES:
                    self.close_connection = True  # its body is not read
                    return self._message(431, "Request Header Fields Too Large")
                # RFC 9110 field values: no control characters but tab. Such a request never
                # reaches a function behind API Gateway's HTTP front end.
                if any(FORBIDDEN_IN_HEADERS.search(value) for value in headers.values()):
                    self.close_connection = True
                    return self._message(400, "Bad Request")
                self.cors_headers = api.cors.headers(headers) if api.cors else {}
                if (api.cors and self.command == "OPTIONS" and "origin" in headers
                        and "access-control-request-method" in headers):
                    return self.answer(204, b"", api.cors.preflight(headers))
                body = self._body()
                if body is None:
                    self.close_connection = True  # what is left of the body is not read
                    return self._message(413, "Request Entity Too Large")
                if body is False:
                    self.close_connection = True
                    return self._message(400, "Bad Request")
                path = urlsplit(self.path).path
                for route in api.routes:
                    params = route.match(self.command, path)
                    if params is not None:
                        break
                else:
                    return self._message(404, "Not Found")
                authorizer = None
                if route.authorizer is not None:
                    try:
                        authorizer = route.authorizer.authorize(headers, route.scopes)
                    except Refused as refused:
                        return self._message(refused.status, refused.body()["message"],
                                             refused.headers())
                event = payload(route, self, body, params, authorizer)
                try:
                    result = route.function.invoke(event, wait=INTEGRATION_TIMEOUT)
                except FutureTimeout:
                    return self._message(503, "Service Unavailable")
                except InvocationError as e:
                    if e.kind == "RequestEntityTooLargeException":  # over Lambda's 6 MB
                        return self._message(413, "Request Entity Too Large")
                    return self._message(500, "Internal Server Error")
                self._respond(result)

            def _body(self) -> bytes | None | Literal[False]:
                """The request's body, by its length or in chunks; None when it is over the
                limit, False when its framing is broken."""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    total = 0
                    while True:
                        size_line = self.rfile.readline(64).split(b";")[0].strip()
                        if not CHUNK_SIZE.fullmatch(size_line):
                            return False
                        size = int(size_line, 16)
                        if size == 0:
                            while self.rfile.readline(8192).strip():
                                pass  # trailers
                            return b"".join(chunks)
                        total += size
                        if total > MAX_BODY_BYTES:
                            return None
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline(8)
                length = self.headers.get("Content-Length") or "0"
                if not (length.isascii() and length.isdigit()):
                    return False
                if int(length) > MAX_BODY_BYTES:
                    return None
                return self.rfile.read(int(length))

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """The server's own refusals (a malformed request line, an unknown method) in
                API Gateway's JSON, not http.server's HTML page."""
                self.cors_headers = {}
                self.close_connection = True
                self._message(404 if code == 501 else code, "Not Found" if code == 501 else (message or "Bad Request"))

            def _respond(self, result: Any) -> None:
                # Payload 2.0: a result without statusCode is the JSON body of a 200.
                if not isinstance(result, dict) or "statusCode" not in result:
                    return self.answer(200, json.dumps(result).encode(),
                                       {"Content-Type": "application/json", **self.cors_headers})
                body = result.get("body") or ""
                raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
                headers = dict(result.get("headers") or {})
                for name, values in (result.get("multiValueHeaders") or {}).items():
                    headers[name] = ",".join(values)
                if api.cors:
                    headers = {k: v for k, v in headers.items()
                               if not k.lower().startswith("access-control-")}
                headers.update(self.cors_headers)
                self.answer(int(result["statusCode"]), raw, headers, result.get("cookies") or [])

            # Every method reaches the routes (an ANY route takes any; which ones API Gateway
            # passes on is not documented), none gets http.server's 501 page.
            def __getattr__(self, name: str):
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        return Handler
