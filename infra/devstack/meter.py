"""What AWS would bill for the requests the emulators serve: requests by caller (a function, or
"platform" for devstack's pollers and set-up) and operation, the entries of batches (EventBridge
bills each event; a deleted message is one EventBridge delivered), and DynamoDB capacity units. Each emulator process counts what it serves (`middleware`, outermost, so
a call IAM refuses is counted too, as AWS bills it) and answers `GET /_devstack/meter`; benchmarks
read the sum through devstack's control port (`/stats`)."""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from . import aws_request

METER_PATH = "/_devstack/meter"

# DynamoDB bills a write per 1 KB of item, a read per 4 KB; transactions twice that. An item's
# size here is its request JSON's length: an upper bound of DynamoDB's own measure.
WRITE_UNIT_BYTES, READ_UNIT_BYTES = 1024, 4096


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def billed(operation: str, body: dict[str, Any]) -> dict[str, float]:
    """The billed quantities of one request beyond the request itself."""
    quantities: defaultdict[str, float] = defaultdict(float)
    if operation in ("PutEvents", "SendMessageBatch", "DeleteMessageBatch"):
        quantities["entries"] += len(body.get("Entries") or [])
    elif operation == "TransactWriteItems":
        for item in body.get("TransactItems") or []:
            for kind, part in item.items():
                size = len(json.dumps(part.get("Item") or part.get("Key") or {}))
                quantities["writeUnits"] += 2 * _units(size, WRITE_UNIT_BYTES)
                quantities["items"] += 1
    elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
        quantities["writeUnits"] += _units(len(json.dumps(body.get("Item") or body.get("Key") or {})),
                                           WRITE_UNIT_BYTES)
    elif operation == "GetItem":
        # The answer's size is not known here: one 4 KB unit, halved when eventually consistent.
        quantities["readUnits"] += 1.0 if body.get("ConsistentRead") else 0.5
    elif operation == "TransactGetItems":
        quantities["readUnits"] += 2 * len(body.get("TransactItems") or [])
    return quantities


class Meter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: defaultdict[str, float] = defaultdict(float)

    def count(self, caller: str, target: str, body: dict[str, Any] | None) -> None:
        operation = target.partition(".")[2]
        with self.lock:
            self.counts[f"{caller} {target}"] += 1
            for quantity, n in billed(operation, body or {}).items():
                self.counts[f"{caller} {target}.{quantity}"] += n

    def describe(self) -> dict[str, float]:
        """Requests and billed quantities; whole numbers as integers (only read units come in
        halves)."""
        with self.lock:
            return {key: int(n) if float(n).is_integer() else n for key, n in self.counts.items()}


METER = Meter()
# Operations whose billed quantities need the request's body.
NEEDS_BODY = {"PutEvents", "SendMessageBatch", "DeleteMessageBatch", "TransactWriteItems", "PutItem", "UpdateItem",
              "DeleteItem", "GetItem", "TransactGetItems"}


def middleware(app, function_of: Callable[[str], str | None]):
    """Counts every call to `app` by its caller: `function_of(access key)`, or "platform" for
    devstack's own calls and the event source mappings'. Serves `METER_PATH`."""

    def count(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(METER_PATH):
            body = json.dumps(METER.describe()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = aws_request.target_of(environ)
        if target is not None:
            caller = function_of(aws_request.access_key(environ)) or "platform"
            body = aws_request.json_body(environ) if target.operation in NEEDS_BODY else None
            METER.count(caller, str(target), body)
        return app(environ, start_response)

    return count
