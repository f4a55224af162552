"""The emulator's own process: moto with devstack's fixes, beside devstack rather than inside it,
so that the data plane and devstack's HTTP API, Runtime API and pollers use both cores.

`python -m infra.devstack.moto_server --port 4566`. Besides moto's API it serves
`GET /_devstack/faults` (settings and counts) and `POST /_devstack/faults` (settings, see
`faults.py`); `POST /_devstack/faults/put-events` takes the `putEvents` setting alone;
`POST /_devstack/iam` takes the functions' roles, `GET` answers what each used and was denied
(see `iam.py`); `GET /_devstack/meter` answers the requests it served, as AWS would bill them
(see `meter.py`); `GET /_devstack/queues` answers each queue's depths and the age of its oldest
message (see `queue_depths`).

devstack runs two of them: one for DynamoDB and its streams, one for everything else (SQS and
EventBridge must share a process: moto delivers a rule's events to the queue in memory). One
Python process is bound to one core by its lock, and the two halves cost about the same per
order. The functions and devstack's pollers call each one directly (`AWS_ENDPOINT_URL_DYNAMODB`);
for everyone else the main one passes DynamoDB calls on (`--forward-dynamodb`), so the stack
still has one endpoint."""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import threading
import time
from typing import Any, cast

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from . import faults, iam, iam_middleware, meter, moto_patches

FAULTS_PATH = "/_devstack/faults"
QUEUES_PATH = "/_devstack/queues"


def queue_depths(now_ms: int | None = None) -> dict[str, dict[str, Any]]:
    """Each queue's messages visible, in flight and delayed (the ApproximateNumberOfMessages*
    attributes), and the age of its oldest message in seconds, which AWS publishes only as the
    CloudWatch metric ApproximateAgeOfOldestMessage (docs/conformance.md); for the console."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import sqs_backends

    now_ms = int(unix_time_millis()) if now_ms is None else now_ms
    depths = {}
    for _account, _region, backend in sqs_backends.iter_backends():
        for name, queue in list(cast(Any, backend).queues.items()):
            messages = list(queue._messages)
            sent = [m.sent_timestamp for m in messages if m.sent_timestamp is not None]
            depths[name] = {
                "visible": sum(1 for m in messages if m.visible and not m.delayed),
                "inFlight": sum(1 for m in messages if not m.visible),
                "delayed": sum(1 for m in messages if m.delayed),
                "oldestAgeSeconds": round((now_ms - min(sent)) / 1000, 1) if sent else None,
            }
    return depths


# The JSON protocols' X-Amz-Target prefixes of the calls the DynamoDB process serves.
DYNAMODB_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")
# Hop-by-hop headers, which a proxy does not pass on (RFC 9110, section 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authenticate", "proxy-authorization"}


def forwarder(port: int):
    """A WSGI app that passes each request on to 127.0.0.1:`port` as it came, over one kept-alive
    connection per thread, and answers with what it got. Only devstack's and the tests' own
    DynamoDB calls come this way: the functions call the DynamoDB process directly."""
    local = threading.local()

    def forward(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in HOP_BY_HOP}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        headers["Content-Length"] = str(len(body))
        path = environ.get("PATH_INFO", "/") + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
        while True:
            reused = getattr(local, "connection", None) is not None
            if not reused:
                local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                local.connection.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
                answer = local.connection.getresponse()
                content = answer.read()
                break
            except (http.client.HTTPException, OSError):
                local.connection.close()
                local.connection = None
                if not reused:  # only a kept-alive connection closed meanwhile is tried again
                    raise
        start_response(f"{answer.status} {answer.reason}",
                       [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP])
        return [content]

    return forward


def application(forward_dynamodb: int | None = None):
    moto = faults.middleware(DomainDispatcherApplication(create_backend_app))
    dynamodb = forwarder(forward_dynamodb) if forward_dynamodb else None

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if dynamodb is not None and environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGETS):
            return dynamodb(environ, start_response)
        if path == QUEUES_PATH:
            body = json.dumps(queue_depths()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if not path.startswith(FAULTS_PATH):
            return moto(environ, start_response)
        status = "200 OK"
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            wanted = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if path == f"{FAULTS_PATH}/put-events":
                wanted = {"putEvents": wanted}
            try:
                faults.FAULTS.configure(wanted)
            except (ValueError, TypeError, AttributeError) as e:
                status, answer = "400 Bad Request", {"message": str(e)}
        if status.startswith("200"):
            answer = faults.FAULTS.describe()
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    # IAM before the faults: a call its role does not allow never reaches a fault or the data. The
    # meter outside both: a refused call is a request AWS bills too.
    return meter.middleware(iam_middleware.middleware(app), iam.ENFORCER.function_of)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults", default="{}", help="fault settings as JSON (see faults.py)")
    parser.add_argument("--no-speedups", action="store_true",
                        help="run without moto_speedups, to measure what they save")
    parser.add_argument("--forward-dynamodb", type=int, metavar="PORT",
                        help="pass DynamoDB and DynamoDB Streams calls on to the emulator on PORT")
    parser.add_argument("--label", default="all services",
                        help="what this process serves, for process listings and benchmarks")
    args = parser.parse_args()
    faults.FAULTS.configure(json.loads(args.faults))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_patches.apply(speedups=not args.no_speedups)
    server = make_server("127.0.0.1", args.port, application(args.forward_dynamodb), threaded=True,
                         request_handler=MotoRequestHandler)
    print(f"moto listening on 127.0.0.1:{server.server_port}", flush=True)
    threading.Thread(target=exit_with_parent, daemon=True).start()
    server.serve_forever()


def exit_with_parent() -> None:
    """devstack may be killed without a chance to stop this process: then it stops itself."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


if __name__ == "__main__":
    main()
