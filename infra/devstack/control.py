"""devstack's control port: functions stopped, started and invoked; faults set and read; the
counters (`/stats`); the local issuer's discovery document and key set; the console
(`/console/`, console.py).

Only this machine's own pages and tools may use it: a request naming another host (a DNS name
rebound to 127.0.0.1) or sent by a page of another origin (a cross-site form stopping a function)
is refused with 403, as a browser would otherwise let any web page reach 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from . import chaos, httpd
from .moto_server import FAULTS_PATH
from .runtime import InvocationError

if TYPE_CHECKING:
    from .console import Console
    from .stack import Stack


def own_origin(headers: Any, port: int) -> bool:
    """Whether the request names this port on the loopback host, and any page that sent it was
    served from there too: by `Origin`, and by `Sec-Fetch-Site`, which a browser sends even where
    it leaves `Origin` out (an image or a link of another site)."""
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    origin = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site")
    return (headers.get("Host") in hosts
            and (origin is None or origin in {f"http://{h}" for h in hosts})
            and (site is None or site in ("same-origin", "none")))


def serve_control(stack: Stack, port: int, console: Console | None = None) -> None:
    """A small HTTP interface for tests and operators: stop, start and invoke a function; set
    faults (`POST /faults` with settings of `faults.py` and `chaos.py`; `POST /faults/put-events
    {"failureRate": 0.3, "source": "orders"}`) and read them with their counts (`GET /faults`)."""
    class Handler(httpd.Handler):
        def _refused(self) -> bool:
            if own_origin(self.headers, port):
                return False
            self.answer_json(403, {"message": "the control port answers only 127.0.0.1 and its own pages"})
            return True

        def _console(self, body: bytes = b"") -> None:
            if console is None:
                return self.answer_json(404, {"message": "this stack serves no console"})
            status, answer, kind = console.route(self.command, self.path, body)
            self.answer(status, answer, {"Content-Type": kind, "Cache-Control": "no-store",
                                         "X-Content-Type-Options": "nosniff",
                                         "Content-Security-Policy": CONTENT_SECURITY_POLICY})

        def _faults(self, settings: dict[str, Any] | None) -> None:
            """Delivery faults are devstack's; the rest are the emulator's, passed on to it."""
            body = None
            if settings is not None:
                try:
                    stack.delivery_faults.configure(settings)
                except (ValueError, TypeError) as e:
                    return self.answer_json(400, {"message": str(e)})
                body = json.dumps({k: v for k, v in settings.items() if k not in chaos.KEYS}).encode()
            answers = []
            for endpoint in stack.emulator_endpoints():
                request = urllib.request.Request(f"{endpoint}{FAULTS_PATH}", data=body,
                                                 method="POST" if body is not None else "GET")
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        answers.append(json.loads(answer.read()))
                except urllib.error.HTTPError as e:
                    return self.answer_json(e.code, json.loads(e.read()))
            # Both processes hold the same settings; each counts the faults of its own services.
            emulator = answers[0]
            for other in answers[1:]:
                emulator["putEvents"]["injected"] += other["putEvents"]["injected"]
                for name, count in other["counts"].items():
                    emulator["counts"][name] = emulator["counts"].get(name, 0) + count
            emulator["counts"] = dict(sorted(emulator["counts"].items()))
            self.answer_json(200, {**emulator, "delivery": stack.delivery_faults.describe()})

        def do_GET(self) -> None:
            if self._refused():
                return
            if self.path == "/console":
                return self.answer(301, headers={"Location": "/console/"})
            if self.path.startswith("/console/"):
                return self._console()
            if self.path.strip("/") == "faults":
                return self._faults(None)
            if self.path.strip("/") == "stats":
                return self.answer_json(200, stack.stats())
            # The local issuer's OIDC discovery document and key set, where API Gateway looks.
            if stack.issuer and self.path == "/.well-known/openid-configuration":
                return self.answer_json(200, stack.issuer.discovery())
            if stack.issuer and self.path == "/.well-known/jwks.json":
                return self.answer_json(200, stack.issuer.jwks())
            self.answer_json(404, {"message": "GET /console/, /faults, /stats, /.well-known/jwks.json"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self._refused():
                return
            if self.path.startswith("/console/"):
                return self._console(body)
            parts = self.path.strip("/").split("/")
            if parts[0] == "faults" and len(parts) <= 2:
                try:
                    settings = json.loads(body or b"{}")
                except ValueError:
                    return self.answer_json(400, {"message": "the body is no JSON"})
                if parts[1:] == ["put-events"]:
                    settings = {"putEvents": settings}
                return self._faults(settings if isinstance(settings, dict) else {"": settings})
            if len(parts) != 3 or parts[0] != "functions" or parts[2] not in ("start", "stop", "invoke"):
                return self.answer_json(404, {"message": "POST /functions/{name}/start, /stop or /invoke"})
            try:
                function = stack.function(parts[1])
            except KeyError as e:
                return self.answer_json(404, {"message": str(e)})
            if parts[2] == "invoke":
                try:
                    return self.answer_json(200, {"result": function.invoke(json.loads(body), wait=function.timeout + 5)})
                except InvocationError as e:
                    return self.answer_json(200, {"error": e.payload or {"errorType": e.kind, "errorMessage": str(e)}})
            function.start() if parts[2] == "start" else function.stop()
            return self.answer_json(200, {"function": function.name, "running": function.running})

    httpd.serve(Handler, "127.0.0.1", port)


# The console's own files and the API it calls; no inline script, nothing from elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; connect-src 'self' http://127.0.0.1:* http://localhost:*; "
                           "img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
