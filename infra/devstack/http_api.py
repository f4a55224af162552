"""API Gateway HTTP API for local use: the template's routes, payload format 2.0, Lambda proxy."""

from __future__ import annotations

import base64
import re
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import httpd
from .runtime import Function, InvocationError
from .template import ACCOUNT

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API's own limit
INTEGRATION_TIMEOUT = 30.0  # HTTP API's maximum integration timeout, in seconds


@dataclass
class Route:
    method: str  # an HTTP method, or ANY
    path: str  # /orders/{orderId}, /{proxy+}
    function: Function

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


def payload(route: Route, handler: BaseHTTPRequestHandler, body: bytes, params: dict) -> dict:
    url = urlsplit(handler.path)
    headers: dict[str, str] = {}
    for name, value in handler.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
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
    def __init__(self, routes: list[Route], host: str, port: int):
        self.routes = sorted(routes, key=Route.specificity, reverse=True)
        self.server = httpd.serve(self._handler(), host, port)

    def _handler(self):
        api = self

        class Handler(httpd.Handler):
            def _message(self, status: int, message: str) -> None:
                self.answer_json(status, {"message": message})

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    return self._message(413, "Request Entity Too Large")
                body = self.rfile.read(length)
                path = urlsplit(self.path).path
                for route in api.routes:
                    params = route.match(self.command, path)
                    if params is not None:
                        break
                else:
                    return self._message(404, "Not Found")
                event = payload(route, self, body, params)
                try:
                    result = route.function.invoke(event, wait=INTEGRATION_TIMEOUT)
                except FutureTimeout:
                    return self._message(503, "Service Unavailable")
                except InvocationError:
                    return self._message(500, "Internal Server Error")
                self._respond(result)

            def _respond(self, result: Any) -> None:
                # Payload 2.0: a result without statusCode is the JSON body of a 200.
                if not isinstance(result, dict) or "statusCode" not in result:
                    return self.answer_json(200, result)
                body = result.get("body") or ""
                raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
                headers = dict(result.get("headers") or {})
                for name, values in (result.get("multiValueHeaders") or {}).items():
                    headers[name] = ",".join(values)
                self.answer(int(result["statusCode"]), raw, headers, result.get("cookies") or [])

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        return Handler
