"""Speed fixes to the pinned moto server, applied by `moto_patches`. Each is named, leaves
moto's answers as they were (a test in `test_moto_speedups.py` shows it), and can be switched off
(`moto_server --no-speedups`) so that the benchmark can show what it saves.

- `queue-attributes`: moto computed every attribute of an SQS queue, approximate message counts
  included (a walk over all its messages), to read any one of them, and did so for every message
  it received or sent: quadratic in a queue's depth. A backlog of a few thousand messages
  saturated the emulator (the chaos soak's first long run: half of its CPU in
  `Queue.attributes`). Here the attributes are a mapping that computes each value when read.
- `sqs-clock`: moto read the clock through `datetime` arithmetic (`unix_time`) twice for every
  message of a queue on every receive, to decide which are visible; with a backlog this was a
  third of the emulator's time. Here the current time comes from `time.time()`, and a queue's
  visible messages are picked against one reading of the clock.
- `event-delivery`: for every event a rule routes to a target, moto built JSONPath parsers (a
  yacc grammar, each time) to apply the default input template, although without an
  `InputTransformer` the result is the event's own fields. Here those fields are copied
  directly; a target with a transformer still goes through moto's parser.
- `tcp-nodelay`: moto's server (Werkzeug's) writes an answer's headers and its body in two
  sends with Nagle's algorithm on, so the body waits for the client to acknowledge the headers:
  up to 40 ms on loopback with delayed ACKs. Here the server's sockets set `TCP_NODELAY`.
- `dynamodb-json`: moto turned the answer of every DynamoDB item operation and stream read into
  JSON by walking botocore's output shape, member by member (a quarter of the emulator's time
  under load; stream reads alone were 14% of the DynamoDB process once item operations were
  fixed). The answer is already the wire format (DynamoDB JSON), so here it is `json.dumps`'d,
  with a stream record's time written as the serializer writes it; anything the plain encoder
  cannot take goes through moto's serializer as before. Likewise an item operation's request is
  `json.loads`'d rather than walked through botocore's input shape (7% of the DynamoDB
  process), unless it holds what the shape parser changes (binary values, nulls).
- `response-setup`: moto listed every method of the response class (`inspect.getmembers`) on
  every request; here the list is kept per class.
- `dispatch`: moto matched every request against every service's URL patterns to find its
  backend. Here the backend of a SigV4-signed DynamoDB, SQS or EventBridge call is remembered by
  what decided it (the signed service and region, and the `X-Amz-Target` prefix).
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from moto.core import responses as moto_responses
from moto.core.responses import ActionResult
from moto.core.serialize import TimestampSerializer
from moto.core.utils import get_service_model
from moto.core.utils import camelcase_to_underscores
from moto.events.utils import EventTemplateParser
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
from moto.sqs import models as sqs_models
from moto.sqs.models import Queue, SQSBackend

# moto's own code, for the tests that compare and for switching the fixes off. (moto declares
# these properties with decorators mypy reads as methods: hence the ignores.)
ORIGINAL_QUEUE_ATTRIBUTES = Queue.attributes.fget  # type: ignore[attr-defined]
ORIGINAL_TEMPLATE_PARSE = EventTemplateParser.parse
ORIGINAL_UNIX_TIME = sqs_models.unix_time
ORIGINAL_UNIX_TIME_MILLIS = sqs_models.unix_time_millis
ORIGINAL_QUEUE_MESSAGES = Queue.messages.fget  # type: ignore[attr-defined]


class QueueAttributes(Mapping):
    """A queue's attributes, each computed when read, with the values moto's own property has."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.names = list(Queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            self.names += Queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:  # type: ignore[attr-defined]  # set in Queue.__init__
            self.names += Queue.KMS_ATTRIBUTES

    def __getitem__(self, name: str) -> Any:
        if name not in self.names:
            raise KeyError(name)
        queue = self.queue
        if name == "RedrivePolicy" and queue.redrive_policy:
            return json.dumps(queue.redrive_policy)
        value = getattr(queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __contains__(self, name: object) -> bool:
        # Mapping's own would compute the value just to say the name exists.
        return name in self.names

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _queue_attributes() -> None:
    original = SQSBackend.get_queue_attributes

    def get_queue_attributes(self: SQSBackend, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        # The answer is serialized as a plain dict; "All" computes every value once.
        return dict(original(self, queue_name, attribute_names))

    Queue.attributes = property(QueueAttributes)  # type: ignore[assignment]
    SQSBackend.get_queue_attributes = get_queue_attributes


# What a rule target with no input transformer gets: the whole event, `account` included
# (moto's own template leaves it out; tests/corpus/sqs-eventbridge-batch.json).
_DEFAULT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources",
                   "detail")


def _event_delivery() -> None:
    def parse(input_template: str, input_paths_map: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        if input_template or input_paths_map:
            return ORIGINAL_TEMPLATE_PARSE(input_template, input_paths_map, event)  # type: ignore[arg-type]
        return {field: ("0" if field == "version" else copy.deepcopy(event[field])) for field in _DEFAULT_FIELDS}

    EventTemplateParser.parse = staticmethod(parse)  # type: ignore[assignment]


_DISPATCHED_SERVICES = {"dynamodb", "sqs", "events"}


def _dispatch() -> None:
    original = DomainDispatcherApplication.get_application

    def get_application(self: DomainDispatcherApplication, environ: dict[str, Any]):
        key = _dispatch_key(environ)
        if key is None:
            return original(self, environ)
        cache = self.__dict__.setdefault("_devstack_apps", {})
        app = cache.get(key)
        if app is None:
            app = cache[key] = original(self, environ)
        return app

    DomainDispatcherApplication.get_application = get_application


def _dispatch_key(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(service, region, target prefix) of a SigV4-signed call to a cached service."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or environ.get("PATH_INFO", "/") != "/":
        return None
    try:
        _, _, region, service, _ = authorization.split(",")[0].split()[1].split("/")
    except ValueError:
        return None
    if service not in _DISPATCHED_SERVICES:
        return None
    return service, region, environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]


def _now_millis(dt: Any = None) -> float:
    return time.time() * 1000.0 if dt is None else ORIGINAL_UNIX_TIME_MILLIS(dt)


def _now(dt: Any = None) -> float:
    return time.time() if dt is None else ORIGINAL_UNIX_TIME(dt)


def _visible_messages(queue: Queue) -> list[Any]:
    now = _now_millis()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _sqs_clock() -> None:
    sqs_models.unix_time = _now
    sqs_models.unix_time_millis = _now_millis
    Queue.messages = property(_visible_messages)  # type: ignore[assignment]


# Operations whose answers are DynamoDB JSON, plain numbers and (stream records) timestamps only.
_WIRE_FORMAT_OPERATIONS = {("dynamodb", op) for op in (
    "GetItem", "PutItem", "UpdateItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
    "TransactWriteItems", "TransactGetItems")} | {("dynamodbstreams", "GetRecords"),
                                                  ("dynamodbstreams", "GetShardIterator")}
ORIGINAL_EXECUTE_RESULT = ActionResult.execute_result


def _unix_timestamp(value: Any) -> int | float:
    """A stream record's creation time, as the JSON serializer writes timestamps."""
    if isinstance(value, datetime):
        return TimestampSerializer._timestamp_unixtimestamp(value)
    raise TypeError(type(value).__name__)


def _fast_execute_result(self: ActionResult, context: Any):
    if (context.service_model.service_name, context.operation_model.name) in _WIRE_FORMAT_OPERATIONS \
            and isinstance(self.result, dict):
        members = context.operation_model.output_shape.members
        try:
            # The serializer keeps the output shape's members only, and no empty one.
            body = json.dumps({k: v for k, v in self.result.items() if v is not None and k in members},
                              default=_unix_timestamp)
        except (TypeError, ValueError):
            pass
        else:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
    return ORIGINAL_EXECUTE_RESULT(self, context)


ORIGINAL_PARSE_PARAMETERS = moto_responses.BaseResponse.parse_parameters


def _fast_parse_parameters(self: moto_responses.BaseResponse, request: Any) -> None:
    """A DynamoDB item operation's request, `json.loads`'d, when the shape parser would give the
    same: no binary attribute (which it decodes from base64), no null (which it drops), and no
    member the operation lacks (which it drops too)."""
    action = self._get_action()
    if self.service_name == "dynamodb" and ("dynamodb", action) in _WIRE_FORMAT_OPERATIONS:
        data = request.data
        if b'"B"' not in data and b'"BS"' not in data and b"null" not in data:
            try:
                params = json.loads(data)
            except ValueError:
                params = None
            members = get_service_model("dynamodb").operation_model(action).input_shape.members
            if isinstance(params, dict) and params.keys() <= members.keys():
                self.params = params
                return
    ORIGINAL_PARSE_PARAMETERS(self, request)


def _dynamodb_json() -> None:
    ActionResult.execute_result = _fast_execute_result
    moto_responses.BaseResponse.parse_parameters = _fast_parse_parameters


def _response_setup() -> None:
    moto_responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        moto_responses.method_names_from_class)


def _tcp_nodelay() -> None:
    MotoRequestHandler.disable_nagle_algorithm = True


SPEEDUPS = {"queue-attributes": _queue_attributes, "sqs-clock": _sqs_clock,
            "event-delivery": _event_delivery, "dynamodb-json": _dynamodb_json,
            "response-setup": _response_setup, "tcp-nodelay": _tcp_nodelay, "dispatch": _dispatch}


def apply() -> None:
    """Installs every speed fix. Applied by `moto_patches`, once."""
    for install in SPEEDUPS.values():
        install()
