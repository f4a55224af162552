"""The emulator's own process: moto with devstack's fixes, beside devstack rather than inside it,
so that the data plane and devstack's HTTP API, Runtime API and pollers use both cores.

`python -m infra.devstack.moto_server --port 4566`. Besides moto's API it serves
`GET /_devstack/faults` (settings and counts) and `POST /_devstack/faults` (settings, see
`faults.py`); `POST /_devstack/faults/put-events` takes the `putEvents` setting alone."""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from . import faults, moto_fixes, moto_speedups

FAULTS_PATH = "/_devstack/faults"


def application():
    moto = faults.middleware(DomainDispatcherApplication(create_backend_app))

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
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

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults", default="{}", help="fault settings as JSON (see faults.py)")
    parser.add_argument("--no-speedups", action="store_true",
                        help="run without moto_speedups, to measure what they save")
    args = parser.parse_args()
    faults.FAULTS.configure(json.loads(args.faults))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_fixes.apply()
    if not args.no_speedups:
        moto_speedups.apply()
    faults.apply()
    server = make_server("127.0.0.1", args.port, application(), threaded=True,
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
