"""The meter, without a running stack: each request counted by its caller, with what AWS bills
beyond the request itself, and a refused call counted as AWS bills it."""

from __future__ import annotations

import io
import json

from .meter import METER, METER_PATH, middleware

FUNCTIONS = {"local-fn": "fn"}


def call(app, target: str, body: dict, key: str) -> bytes:
    raw = json.dumps(body).encode()
    return b"".join(app({"PATH_INFO": "/", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(raw)),
                         "HTTP_X_AMZ_TARGET": target, "wsgi.input": io.BytesIO(raw),
                         "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/20261127/us-east-1/x/aws4_request"},
                        lambda status, headers: None))


def test_the_meter_counts_every_request_by_caller_and_what_aws_bills_beyond_it():
    seen = []

    def app(environ, start_response):
        # The app still reads the whole body the meter read.
        seen.append(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        return [b"{}"]

    metered = middleware(app, FUNCTIONS.get)
    before = METER.describe()
    call(metered, "AWSEvents.PutEvents", {"Entries": [{"EventBusName": "b"}] * 3}, "local-fn")
    call(metered, "AWSEvents.PutEvents", {"Entries": [{"EventBusName": "b"}] * 2}, "local-fn")
    call(metered, "AmazonSQS.ReceiveMessage", {"QueueUrl": "http://q/1/Q"}, "testing")
    call(metered, "AmazonSQS.ReceiveMessage", {"QueueUrl": "http://q/1/Q"}, "testing")
    call(metered, "DynamoDB_20120810.TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "Orders", "Item": {"pk": {"S": "x" * 1500}}}},
        {"ConditionCheck": {"TableName": "Orders", "Key": {"pk": {"S": "y"}}}}]}, "local-fn")
    call(metered, "DynamoDB_20120810.GetItem", {"TableName": "Orders", "Key": {}}, "local-fn")
    after = METER.describe()
    counted = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert counted == {"fn AWSEvents.PutEvents": 2, "fn AWSEvents.PutEvents.entries": 5,
                       "platform AmazonSQS.ReceiveMessage": 2,
                       "fn DynamoDB_20120810.TransactWriteItems": 1,
                       # 1.5 KB: two units, doubled by the transaction; the check: one, doubled
                       "fn DynamoDB_20120810.TransactWriteItems.writeUnits": 6,
                       "fn DynamoDB_20120810.TransactWriteItems.items": 2,
                       "fn DynamoDB_20120810.GetItem": 1,
                       "fn DynamoDB_20120810.GetItem.readUnits": 0.5}
    assert len(seen) == 6 and json.loads(seen[0]) == {"Entries": [{"EventBusName": "b"}] * 3}


def test_the_meter_answers_its_counts_and_passes_other_calls_on_uncounted():
    reached = []
    metered = middleware(lambda environ, start_response: reached.append(environ) or [b"ok"], FUNCTIONS.get)
    before = METER.describe()
    call(metered, "Unknown_2020.Operation", {}, "local-fn")
    assert len(reached) == 1 and METER.describe() == before
    answer = b"".join(metered({"PATH_INFO": METER_PATH, "REQUEST_METHOD": "GET"}, lambda status, headers: None))
    assert json.loads(answer) == before and len(reached) == 1
