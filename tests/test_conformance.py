"""The corpus of AWS's own shapes (tests/corpus) and the samples in events/ pinned to it: every
sample has the keys, JSON types and formats AWS sends (docs/conformance.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shapes import differences, entries, entry

ROOT = Path(__file__).resolve().parents[1]

# Which corpus entries each kind of sample must look like.
HTTP = ["http-api-v2-jwt-no-route-scopes"]
EVENTBRIDGE_BATCH = ["sqs-eventbridge-batch"]
STREAM = ["dynamodb-stream-insert-modify", "dynamodb-stream-ttl-delete"]
SAMPLES = {
    "order-api": HTTP, "consumer-api": HTTP, "restaurant-api": HTTP,
    "consumer-validator": EVENTBRIDGE_BATCH, "restaurant-validator": EVENTBRIDGE_BATCH,
    "order-replies": EVENTBRIDGE_BATCH, "order-notifier": EVENTBRIDGE_BATCH,
    "replica-updater": EVENTBRIDGE_BATCH, "outbox-relay": STREAM, "decision-timer": STREAM,
}
# An SQS message whose body is the order's timer (decision-timer's), no EventBridge envelope.
SQS = ["sqs-message-attributes"]
BY_SAMPLE = {"order-replies/deadline.json": SQS}
# Not an event: the items `devstack invoke --seed` writes before a sample runs.
SEEDS = {"order-replies/seed.json"}


@pytest.mark.parametrize("name", entries())
def test_every_corpus_entry_cites_its_sources_and_has_its_own_shape(name):
    corpus = entry(name)
    assert corpus["source"] and all(url.startswith("https://") for url in corpus["source"])
    assert corpus["notes"]
    assert differences(corpus["event"], [name]) == []


def samples() -> list[str]:
    return sorted(str(p.relative_to(ROOT / "events")) for p in (ROOT / "events").rglob("*.json")
                  if str(p.relative_to(ROOT / "events")) not in SEEDS)


@pytest.mark.parametrize("sample", samples())
def test_every_sample_event_has_the_shape_aws_sends(sample):
    event = json.loads((ROOT / "events" / sample).read_text())
    assert differences(event, BY_SAMPLE.get(sample, SAMPLES[sample.split("/")[0]])) == []


def test_the_comparison_sees_differences_of_keys_types_and_formats():
    """Differences devstack once had, put back into AWS's own events, are found. (Values of the
    same type and format, such as `eventVersion` "1.0", are asserted where devstack makes them:
    infra/devstack/test_event_shapes.py.)"""
    http = entry("http-api-v2-jwt-no-route-scopes")["event"]
    numeric = json.loads(json.dumps(http))
    numeric["requestContext"]["authorizer"]["jwt"]["claims"]["exp"] = 1795698000
    assert differences(numeric, HTTP) == [
        "requestContext.authorizer.jwt.claims.exp: integer where AWS sends string"]
    stream = json.loads((ROOT / "events/outbox-relay/inserts-and-a-ttl-expiry.json").read_text())
    stream["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] = 1795694400.25
    assert differences(stream, STREAM) == [
        "[0] Records[].dynamodb.ApproximateCreationDateTime: float where AWS sends integer"]
    extra = json.loads(json.dumps(http))
    extra["requestContext"]["authorizer"]["principalId"] = ""
    assert differences(extra, HTTP) == ["requestContext.authorizer.principalId: not a key AWS sends"]
    failure = json.loads(json.dumps(entry("dynamodb-stream-on-failure-record")["event"]))
    failure["timestamp"] = "2026-03-14T09:28:41.305+00:00"
    assert differences(failure, ["dynamodb-stream-on-failure-record"]) == [
        "timestamp: string where AWS sends string (time, milliseconds, Z)"]
    sqs = json.loads(json.dumps(entry("sqs-message-attributes")["event"]))
    sqs["Records"][0]["messageAttributes"]["correlationId"]["binaryValue"] = None
    assert differences(sqs, ["sqs-message-attributes"]) != []
    del sqs["Records"][0]["md5OfBody"]
    assert "[0] Records[].md5OfBody: missing" in differences(sqs, ["sqs-message-attributes"])
