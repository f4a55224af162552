"""Faults the emulator injects the way AWS produces them, so the code meets them before AWS does.

Every fault is counted. Settings arrive as JSON (`configure`), at start-up or at run time through
devstack's control port, and only the keys given change:

- `transactionHoldMs` (default 5): how long a `TransactWriteItems` is in flight. Its items are
  held meanwhile, so an overlapping transaction is cancelled with `TransactionConflict` and a
  single write to a held item gets `TransactionConflictException`, as on DynamoDB. This is not
  injected: it happens by itself whenever writers overlap.
- `errors`: `{"dynamodb": {"throttle": 0.05, "internal": 0.02}, "events:PutEvents": {...}}`, a
  share of the functions' calls per service, or per `service:Operation`, answered with the
  service's throttling error (400) or internal error (500). Half of the internal errors happen
  after the call took effect, as a lost response does on AWS.
- `putEvents`: `{"failureRate": 0.3, "source": "orders"}`, `PutEvents` entries refused one by
  one (`InternalFailure`) while the call succeeds, as EventBridge does under load.
- `eventDuplicates`: the share of events a rule delivers to its queue twice (EventBridge is
  at-least-once).

Only the functions' own calls are refused (they sign with an access key other than devstack's);
devstack's pollers and the tests' own reads are never faulted."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from typing import Any

from moto.events.models import EventsBackend, Rule

from . import aws_request

DEVSTACK_ACCESS_KEY = "testing"

# The wire error of each service, per kind: (HTTP status, __type).
def share(name: str, value: Any) -> float:
    """A fault's share of calls: a number from 0 to 1."""
    rate = float(value)
    if not 0 <= rate <= 1:
        raise ValueError(f"{name}: a share between 0 and 1, not {rate}")
    return rate


ERRORS = {
    "dynamodb": {"throttle": (400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
                 "internal": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError")},
    "events": {"throttle": (400, "ThrottlingException"), "internal": (500, "InternalException")},
    "sqs": {"throttle": (400, "com.amazonaws.sqs#RequestThrottled"),
            "internal": (500, "com.amazonaws.sqs#InternalError")},
    "dynamodbstreams": {"throttle": (400, "com.amazonaws.dynamodb.v20120810#LimitExceededException"),
                        "internal": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError")},
}
TARGET_PREFIXES = {"DynamoDB_20120810": "dynamodb", "AWSEvents": "events", "AmazonSQS": "sqs",
                   "DynamoDBStreams_20120810": "dynamodbstreams"}


class Faults:
    def __init__(self, seed: int = 7) -> None:
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.transaction_hold_ms = 5.0
        self.errors: dict[str, dict[str, float]] = {}
        self.put_events_rate = 0.0
        self.put_events_source: str | None = None
        self.event_duplicates = 0.0
        self.counts: Counter[str] = Counter()

    def configure(self, settings: dict[str, Any]) -> None:
        """Takes the settings given, each checked first: nothing changes if one is wrong."""
        with self.lock:
            if "transactionHoldMs" in settings:
                hold = float(settings["transactionHoldMs"])
                if not 0 <= hold <= 10_000:
                    raise ValueError(f"transactionHoldMs: milliseconds from 0 to 10000, not {hold}")
            if "errors" in settings:
                errors = settings["errors"] or {}
                for where, kinds in errors.items():
                    service = where.split(":", 1)[0]
                    unknown = set(kinds) - set(ERRORS.get(service, {}))
                    if service not in ERRORS or unknown:
                        raise ValueError(f"errors.{where}: services {sorted(ERRORS)}, kinds throttle and internal")
                errors = {where: {k: share(f"errors.{where}.{k}", r) for k, r in kinds.items()}
                          for where, kinds in errors.items()}
            if "putEvents" in settings:
                put_events = settings["putEvents"] or {}
                put_events_rate = share("putEvents.failureRate", put_events.get("failureRate", 0))
            if "eventDuplicates" in settings:
                event_duplicates = share("eventDuplicates", settings["eventDuplicates"])
            if "transactionHoldMs" in settings:
                self.transaction_hold_ms = hold
            if "errors" in settings:
                self.errors = errors
            if "putEvents" in settings:
                self.put_events_rate, self.put_events_source = put_events_rate, put_events.get("source")
            if "eventDuplicates" in settings:
                self.event_duplicates = event_duplicates

    def chance(self, rate: float, count_as: str) -> bool:
        with self.lock:
            if rate <= 0 or self.random.random() >= rate:
                return False
            self.counts[count_as] += 1
            return True

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def error_for(self, service: str, operation: str) -> str | None:
        """The kind of error to answer this call with, if any."""
        with self.lock:
            rates = {**self.errors.get(service, {}), **self.errors.get(f"{service}:{operation}", {})}
        for kind, rate in sorted(rates.items()):
            if self.chance(rate, f"{service}:{operation}:{kind}"):
                return kind
        return None

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "transactionHoldMs": self.transaction_hold_ms,
                "errors": self.errors,
                "putEvents": {"failureRate": self.put_events_rate, "source": self.put_events_source,
                              "injected": self.counts["putEvents:refused"]},
                "eventDuplicates": self.event_duplicates,
                "counts": dict(sorted(self.counts.items())),
            }


FAULTS = Faults()


def operation_of(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(service, operation) of a JSON-protocol call, from its X-Amz-Target header."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix, _, operation = target.partition(".")
    service = TARGET_PREFIXES.get(prefix)
    return (service, operation) if service and operation else None


def middleware(app):
    """Answers a share of the functions' calls with the service's own error."""

    def faulty(environ, start_response):
        call = operation_of(environ)
        if call is None or aws_request.access_key(environ) == DEVSTACK_ACCESS_KEY:
            return app(environ, start_response)
        kind = FAULTS.error_for(*call)
        if kind is None:
            return app(environ, start_response)
        if kind == "internal" and FAULTS.chance(0.5, f"{call[0]}:{call[1]}:internal-after-effect"):
            # The call takes effect; only its answer is lost.
            for _ in app(environ, lambda *args, **kwargs: None):
                pass
        status, error_type = ERRORS[call[0]][kind]
        body = json.dumps({"__type": error_type, "message": "injected by devstack"}).encode()
        # EventBridge speaks JSON 1.1; DynamoDB, its streams and SQS speak 1.0.
        version = "1.1" if call[0] == "events" else "1.0"
        headers = [("Content-Type", f"application/x-amz-json-{version}"), ("Content-Length", str(len(body))),
                   ("x-amzn-query-error", f"{error_type.rsplit('#', 1)[-1]};Sender")]
        start_response(f"{status} {'Bad Request' if status == 400 else 'Internal Server Error'}", headers)
        return [body]

    return faulty


def apply() -> None:
    """Wraps moto's PutEvents (entries refused one by one) and its rule delivery to SQS
    (duplicates). Applied by `moto_patches`."""
    original_put = EventsBackend.put_events

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > 10:
            return original_put(self, events)  # moto's own validation error
        results = []
        for event in events:
            source = FAULTS.put_events_source
            if source in (None, event.get("Source")) and FAULTS.chance(FAULTS.put_events_rate, "putEvents:refused"):
                results.append({"ErrorCode": "InternalFailure",
                                "ErrorMessage": "refused by devstack's fault injection"})
            else:
                results.extend(original_put(self, [event]))
        return results

    EventsBackend.put_events = put_events

    original_send = Rule._send_to_sqs_queue

    def send_to_sqs_queue(self: Rule, resource_id: str, event: dict[str, Any], group_id: str | None = None):
        original_send(self, resource_id, dict(event), group_id)
        if FAULTS.chance(FAULTS.event_duplicates, "eventDuplicates:delivered"):
            original_send(self, resource_id, dict(event), group_id)

    Rule._send_to_sqs_queue = send_to_sqs_queue
