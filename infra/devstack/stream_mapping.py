"""The DynamoDB stream event source mapping: a table's stream polled for a function, in order,
checkpointed after success or at the reported failure, with bisection, retries, a record age
limit and an on-failure destination (Lambda's stream parameters)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, Callable

from .chaos import DeliveryFaults
from .mappings import Mapping, _iso, fitting, log, matches, patterns
from .runtime import Function, InvocationError
from .template import REGION, TemplateError


class StreamMapping(Mapping):
    """One shard (moto has one per table), checkpointed after success or at the reported failure.
    A poll that delivers only part of what it read takes a fresh iterator after the checkpoint."""

    def __init__(self, function: Function, where: str, streams, sqs, stream_arn: str,
                 props: dict[str, Any], send_failure: Callable[[str, dict[str, Any]], None],
                 faults: DeliveryFaults | None = None):
        super().__init__(function, where, faults)
        self.streams = streams
        self.sqs = sqs
        self.stream_arn = stream_arn
        self.batch_size = int(props.get("BatchSize", 100))
        self.window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.bisect = bool(props.get("BisectBatchOnFunctionError", False))
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))
        self.partial = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        self.filters = patterns(props.get("FilterCriteria"), where)
        self.on_failure = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        self.send_failure = send_failure
        if int(props.get("ParallelizationFactor", 1)) != 1:
            raise TemplateError(f"{where}: only ParallelizationFactor 1 is emulated")
        if int(props.get("MaximumRecordAgeInSeconds", -1)) != -1:
            raise TemplateError(f"{where}: MaximumRecordAgeInSeconds is not emulated")
        self._next_iterator: tuple[str | None, str | None] = (None, None)
        shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        self.shard_id = shards[0]["ShardId"]
        self.checkpoint: str | None = None
        if props.get("StartingPosition", "TRIM_HORIZON") == "LATEST":
            latest = self._records(after=None, limit=10_000)
            self.checkpoint = latest[-1]["dynamodb"]["SequenceNumber"] if latest else None
        # Lambda reads each shard four times a second.
        self.idle_wait = 0.25
        self._first_seen: dict[str, float] = {}

    def _records(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        """The records after `after` (from the shard's start when None). Each read leaves an
        iterator just past what it returned, which the next read reuses when it starts there
        (an idle poll, or a page delivered whole): one call instead of two."""
        position, iterator = self._next_iterator
        self._next_iterator = (None, None)
        if iterator is None or position != after:
            iterator = self._iterator(after)
        try:
            answer = self.streams.get_records(ShardIterator=iterator, Limit=limit)
        except self.streams.exceptions.ExpiredIteratorException:
            answer = self.streams.get_records(ShardIterator=self._iterator(after), Limit=limit)
        records = answer["Records"]
        if answer.get("NextShardIterator"):
            self._next_iterator = (records[-1]["dynamodb"]["SequenceNumber"] if records else after,
                                   answer["NextShardIterator"])
        return records

    def _iterator(self, after: str | None) -> str:
        position = ({"ShardIteratorType": "TRIM_HORIZON"} if after is None else
                    {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after})
        return self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=self.shard_id,
                                               **position)["ShardIterator"]

    def poll(self) -> bool:
        records = self._records(self.checkpoint, self.batch_size * 4)
        if not records:
            return False
        kept = [r for r in records if not self.filters or any(matches(p, r) for p in self.filters)]
        if kept and len(kept) < self.batch_size and self.window > 0:
            # The batching window: wait for a full batch, but no longer than the window.
            waited = time.time() - self._first_seen.setdefault(kept[0]["dynamodb"]["SequenceNumber"], time.time())
            if waited < self.window:
                return False
        self._first_seen.clear()
        if not kept:
            self.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
            return True
        events = [self._event_record(r) for r in kept[: self.batch_size]]
        events = events[: fitting(events)]
        batch = kept[: len(events)]
        self._process(events)
        # Delivered, or given up on: either way the shard moves past the batch, and past the
        # filtered-out records among it.
        self.checkpoint = batch[-1]["dynamodb"]["SequenceNumber"]
        return True

    def _process(self, batch: list[dict[str, Any]]) -> None:
        """Delivers the batch until it succeeds, is split, or its retries are spent."""
        retries = 0
        while batch:
            failed_at = self._invoke(batch)
            if failed_at is None:
                return
            batch = batch[failed_at:]
            if self.bisect and len(batch) > 1:
                # Splitting does not count as a retry; each half is delivered in turn.
                half = len(batch) // 2
                self._process(batch[:half])
                self._process(batch[half:])
                return
            if self.max_retries != -1 and retries >= self.max_retries:
                self._give_up(batch, retries + 1)
                return
            retries += 1
            time.sleep(min(0.05 * 2 ** retries, 2))

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """None on success, else the index of the first record to deliver again."""
        while not self.function.running and not self.stopped.is_set():
            time.sleep(0.1)  # a stopped (throttled) function costs the batch no retry
        try:
            response = self.invoke(batch)
        except (InvocationError, TimeoutError) as e:
            log.warning("%s: invocation failed: %s", self.where, e)
            self.function_error = "Unhandled"  # what Lambda reports of any function error
            return 0
        self.function_error = None
        if not self.partial:
            return None
        failures = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return None
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        reported = [f.get("itemIdentifier") for f in failures]
        if any(s not in sequence_numbers for s in reported):
            return 0  # an unknown identifier fails the whole batch, as on Lambda
        return min(sequence_numbers.index(s) for s in reported)

    # The last invocation's function error, for the on-failure record: none after a reported
    # batch item failure.
    function_error: str | None = None

    def _give_up(self, batch: list[dict[str, Any]], attempts: int) -> None:
        first, last = batch[0], batch[-1]
        response = {"statusCode": 200, "executedVersion": "$LATEST"}
        if self.function_error:
            response["functionError"] = self.function_error
        info: dict[str, Any] = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function.arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time(), milliseconds=True),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["dynamodb"]["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": _iso(last["dynamodb"]["ApproximateCreationDateTime"]),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        log.warning("%s: retries exhausted for %d record(s) from %s", self.where, len(batch),
                    info["DDBStreamBatchInfo"]["startSequenceNumber"])
        if self.on_failure:
            self.send_failure(self.on_failure, info)

    def _event_record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            created = created.timestamp()
        if created is not None:
            change["ApproximateCreationDateTime"] = int(created)  # whole seconds, as Lambda sends
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",  # Lambda's, whatever moto's stream says
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": change,
            "eventSourceARN": self.stream_arn,
        }
