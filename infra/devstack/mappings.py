"""Event source mappings, as the template configures them: what they share (filters, the 6 MB
batch bound, the polling thread), SQS queues polled for a function with batching, filters and
partial batch responses, and schedules. DynamoDB streams are `stream_mapping.py`."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from .chaos import DeliveryFaults
from .runtime import MAX_REQUEST_BYTES, Function, InvocationError
from .template import ACCOUNT, REGION, TemplateError

log = logging.getLogger("devstack.mappings")

OPERATORS = {"prefix", "anything-but", "exists"}
LONG_POLL_SECONDS = 20


def check_pattern(pattern: Any, where: str) -> None:
    """Refuses, at start-up, filter syntax that `matches` does not implement."""
    if isinstance(pattern, dict):
        for value in pattern.values():
            check_pattern(value, where)
    elif isinstance(pattern, list):
        for value in pattern:
            if isinstance(value, dict):
                unknown = set(value) - OPERATORS
                if unknown:
                    raise TemplateError(f"{where}: filter operator {sorted(unknown)} is not emulated")
    else:
        raise TemplateError(f"{where}: a filter pattern's leaves must be lists")


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """Lambda's event filtering for the operators in OPERATORS."""
    if not isinstance(event, dict):
        return False
    for key, expected in pattern.items():
        present = key in event
        value = event.get(key)
        if isinstance(expected, dict):
            if not matches(expected, value):
                return False
            continue
        if not any(_leaf(rule, present, value) for rule in expected):
            return False
    return True


def _leaf(rule: Any, present: bool, value: Any) -> bool:
    if not isinstance(rule, dict):
        return present and (value == rule or (isinstance(value, list) and rule in value))
    if "exists" in rule:
        return present == rule["exists"]
    if not present:
        return False
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    excluded = rule["anything-but"]
    return value not in (excluded if isinstance(excluded, list) else [excluded])


def patterns(filter_criteria: dict[str, Any] | None, where: str) -> list[dict[str, Any]]:
    result = [json.loads(f["Pattern"]) for f in (filter_criteria or {}).get("Filters", [])]
    for pattern in result:
        check_pattern(pattern, where)
    return result


def fitting(records: list[dict[str, Any]]) -> int:
    """How many of `records`, from the first, one invocation carries: Lambda passes a batch
    "up to the payload limit for synchronous invocation (6 MB)", and at least one record. The
    payload counted as the runtime sends it: `json.dumps({"Records": records})`."""
    size, count = len(json.dumps({"Records": []})), 0
    for record in records:
        size += len(json.dumps(record).encode()) + (2 if count else 0)  # ", " between records
        if count and size > MAX_REQUEST_BYTES:
            break
        count += 1
    return count


def _iso(timestamp: float, milliseconds: bool = False) -> str:
    """UTC with a `Z`, in whole seconds or milliseconds, as Lambda and EventBridge write times."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment.microsecond // 1000:03d}" if milliseconds else "") + "Z"


class Mapping:
    # How many batches are in flight at once, and how long a poller rests after finding none.
    concurrency = 1
    idle_wait = 0.0

    def __init__(self, function: Function, where: str, faults: DeliveryFaults | None = None):
        self.function = function
        self.where = where
        self.faults = faults or DeliveryFaults()
        self.stopped = threading.Event()

    def invoke(self, records: list[dict[str, Any]]) -> Any:
        """Invokes the function with a batch, or, when a fault is due, lets its instance crash
        after part of the batch or answer past its timeout: the side effects happen, the answer
        never arrives, and the caller redelivers as Lambda would."""
        wait = self.function.timeout + 5
        fault = self.faults.invocation_fault()
        if fault is None:
            return self.function.invoke({"Records": records}, wait=wait)
        done = self.faults.part(records) if fault == "crashes" else records
        self.function.invoke_and_crash({"Records": done}, wait)
        if fault == "crashes":
            raise InvocationError("Runtime.ExitError", f"injected: instance died after {len(done)} "
                                  f"of {len(records)} records")
        raise InvocationError("Sandbox.Timedout", "injected: answered after the timeout")

    def start(self) -> None:
        for poller in range(self.concurrency):
            threading.Thread(target=self._run, name=f"{self.where}#{poller}", daemon=True).start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            if not self.function.running:
                # A stopped function takes no events, like one throttled to zero concurrency:
                # the records wait in their queue or stream.
                time.sleep(0.1)
                continue
            try:
                if not self.poll():
                    time.sleep(self.idle_wait)
            except Exception:  # noqa: BLE001 - the poller must outlive any one failure
                log.exception("%s: poll failed", self.where)
                time.sleep(1)

    def poll(self) -> bool:
        raise NotImplementedError


class SqsMapping(Mapping):
    def __init__(self, function: Function, where: str, sqs, queue_arn: str, props: dict[str, Any],
                 faults: DeliveryFaults | None = None):
        super().__init__(function, where, faults)
        self.sqs = sqs
        self.queue_arn = queue_arn
        self.queue_url = sqs.get_queue_url(QueueName=queue_arn.split(":")[-1])["QueueUrl"]
        self.batch_size = int(props.get("BatchSize", 10))
        self.window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.partial = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        self.filters = patterns(props.get("FilterCriteria"), where)
        # Lambda polls a queue with several pollers and invokes for each batch at once, up to the
        # function's concurrency (here its instances) and ScalingConfig.MaximumConcurrency.
        maximum = int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", function.instances))
        self.concurrency = max(1, min(function.instances, maximum))
        if self.batch_size > 10 and self.window == 0:
            raise TemplateError(f"{where}: a BatchSize over 10 needs MaximumBatchingWindowInSeconds")
        visibility = int(sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "VisibilityTimeout"])["Attributes"]["VisibilityTimeout"])
        if visibility < function.timeout:
            # Lambda refuses to create such a mapping: a message would be delivered again while
            # its first invocation still runs.
            raise TemplateError(f"{where}: the queue's VisibilityTimeout ({visibility} s) is shorter "
                                f"than the function's Timeout ({function.timeout} s)")

    def poll(self) -> bool:
        messages = self._gather()
        if not messages:
            return False
        records = [self._record(m) for m in messages]
        over = records[fitting(records):]
        if over:
            self._release(over)  # past 6 MB: left for the next batch
            records = records[:len(records) - len(over)]
        if not self.function.running:
            # Stopped while this poll waited: back to the queue at once. The receive counts
            # towards maxReceiveCount, as a throttled mapping's does on AWS; each poller can
            # spend one per stop, so pollers (instances) stay few.
            self._release(records)
            return True
        kept = [r for r in records if not self.filters or any(matches(p, self._filterable(r)) for p in self.filters)]
        dropped = [r for r in records if r not in kept]
        if len(kept) > 1 and self.faults.happens("sqsReorder"):
            self.faults.shuffle(kept)
        self._delete(dropped)  # filtered-out messages are deleted, as Lambda does
        if kept:
            self._deliver(kept)
        return True

    def _gather(self) -> list[dict[str, Any]]:
        """One batch. Without a batching window, what one receive gets; with one, Lambda goes on
        reading until the batch is full or the window has passed; for SQS the window opens as
        the poller's previous invocation ends, which is when this is called, so a message that
        comes after it is invoked at once (docs/conformance.md). Long polls, as Lambda's pollers
        (an idle queue costs one call per 20 s), and in the window's last second a receive every
        0.2 s, so that a batch filled then is invoked without waiting for the rest."""
        messages: list[dict[str, Any]] = []
        closes = time.time() + self.window
        while len(messages) < self.batch_size:
            if not messages:
                wait = LONG_POLL_SECONDS
            elif not self.window:
                break
            else:
                left = closes - time.time()
                if left <= 0:
                    break
                if left < 1:  # SQS waits whole seconds
                    time.sleep(min(left, 0.2))
                wait = min(LONG_POLL_SECONDS, int(left))
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=wait, MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"]).get("Messages", [])
            messages += received
            if not messages:
                break
        return messages

    def _filterable(self, record: dict[str, Any]) -> dict[str, Any]:
        try:
            return {**record, "body": json.loads(record["body"])}
        except ValueError:
            return record

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        try:
            response = self.invoke(records)
        except InvocationError as e:
            if e.kind == "TooManyRequestsException":
                self._release(records)  # refused, not failed: back at once (the receive counted)
                return
            log.warning("%s: invocation failed (%s); %d messages return to the queue", self.where, e, len(records))
            return
        except TimeoutError as e:
            log.warning("%s: invocation timed out (%s); %d messages return to the queue", self.where, e, len(records))
            return
        failed = self._failed(response, records)
        done = [r for r in records if r["messageId"] not in failed]
        # At-least-once: a share of the handled messages is not deleted but delivered again.
        again = [r for r in done if self.faults.happens("sqsDuplicates")]
        self._release(again)
        self._delete([r for r in done if r not in again])

    def _failed(self, response: Any, records: list[dict[str, Any]]) -> set[str]:
        if not self.partial:
            return set()
        ids = {r["messageId"] for r in records}
        if response is None:
            return set()  # a null answer is a complete success, as on Lambda
        failures = response.get("batchItemFailures") or [] if isinstance(response, dict) else None
        if failures is None:
            return ids
        reported = {f.get("itemIdentifier") for f in failures}
        # An empty or unknown identifier fails the whole batch, as on Lambda.
        return ids if reported - ids else reported

    def _release(self, records: list[dict[str, Any]]) -> None:
        """Makes messages visible again at once, for a function that could not take them."""
        for start in range(0, len(records), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 0}
                for i, r in enumerate(records[start:start + 10])])

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                       for i, r in enumerate(records[start:start + 10])]
            if entries:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """An SQS record as Lambda passes it: an attribute's value under `stringValue` or
        `binaryValue` (base64), the other key absent (tests/corpus/sqs-message-attributes.json)."""
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {name: _attribute(a) for name, a in message.get("MessageAttributes", {}).items()},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record


def _attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if "StringValue" in attribute:
        value["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        binary = attribute["BinaryValue"]
        value["binaryValue"] = base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary
    return {**value, "stringListValues": [], "binaryListValues": [], "dataType": attribute["DataType"]}


class ScheduleMapping(Mapping):
    """An EventBridge schedule: `rate(N unit)` invokes the function with a Scheduled Event."""

    UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}

    def __init__(self, function: Function, where: str, expression: str):
        super().__init__(function, where)
        found = re.fullmatch(r"rate\((\d+) (\w+)\)", expression.strip())
        if not found or found.group(2) not in self.UNITS:
            raise TemplateError(f"{where}: only rate() schedules are emulated, not {expression!r}")
        self.period = int(found.group(1)) * self.UNITS[found.group(2)]
        self.next_run = time.time() + self.period
        self.idle_wait = 1.0

    def poll(self) -> bool:
        if time.time() < self.next_run:
            return False
        self.next_run += self.period
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": ACCOUNT, "time": _iso(time.time()), "region": REGION,
                 "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.where}"], "detail": {}}
        try:
            self.function.invoke(event, wait=self.function.timeout + 5)
        except (InvocationError, TimeoutError) as e:
            log.warning("%s: scheduled invocation failed: %s", self.where, e)
        return True
