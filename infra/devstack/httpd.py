"""What devstack's small HTTP servers (HTTP API, Runtime API, control) share."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Set by the server from the body's length; never passed through from a function's answer.
HOP_HEADERS = ("content-length", "connection", "transfer-encoding")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One segment per answer, sent at once: without these, Nagle's algorithm and delayed ACKs
    # add about 40 ms to every small request on loopback.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
               cookies: list[str] | tuple[str, ...] = ()) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        if self.close_connection:
            # Said, so that a client does not send its next request on this connection.
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_json(self, status: int, value: Any) -> None:
        self.answer(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


class Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a burst of clients beyond it saw connections reset.
    # API Gateway answers every client; the kernel's own maximum comes closest.
    request_queue_size = socket.SOMAXCONN


def serve(handler: type[Handler], host: str, port: int) -> ThreadingHTTPServer:
    """Serves on a daemon thread; port 0 takes a free port (see `server_address`)."""
    server = Server((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
