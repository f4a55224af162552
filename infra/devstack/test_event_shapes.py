"""The events devstack itself makes, from its own code on moto, have AWS's shapes: the corpus
of tests/corpus, compared by tests/shapes.py (docs/conformance.md)."""

from __future__ import annotations

import base64
import json
import time
from email.message import Message
from typing import Any

import pytest

from infra.devstack import moto_speedups
from infra.devstack.http_api import Route, payload
from infra.devstack.identity import JwtAuthorizer, LocalIssuer
from infra.devstack.mappings import ScheduleMapping, SqsMapping
from infra.devstack.stream_mapping import StreamMapping
from infra.devstack.runtime import InvocationError
from shapes import differences

# The delivery of a rule's events to a queue, as devstack's moto makes it.
moto_speedups.SPEEDUPS["event-delivery"]()


class Recorder:
    """A function that keeps what it is invoked with and answers null, or fails."""

    instances, timeout, running = 1, 3, True
    arn = "arn:aws:lambda:us-east-1:123456789012:function:recorder"

    def __init__(self, fails: bool = False):
        self.fails = fails
        self.payloads: list[Any] = []

    def invoke(self, event: Any, wait: float | None = None) -> Any:
        self.payloads.append(event)
        if self.fails:
            raise InvocationError("Unhandled", "failed on purpose")
        return None


class Request:
    """What http_api reads of a request."""

    def __init__(self, method: str, path: str, headers: dict[str, str]):
        self.command, self.path, self.request_version = method, path, "HTTP/1.1"
        self.client_address = ("127.0.0.1", 50000)
        self.headers = Message()
        for name, value in headers.items():
            self.headers[name] = value


def test_the_http_api_event_has_the_shape_api_gateway_sends():
    issuer = LocalIssuer.create("https://issuer.test")
    claims = issuer.claims("ops", "orders-api", ["orders/operator", "openid"])
    claims.update({"groups": ["a", "b"], "email_verified": True, "nothing": None})
    token = issuer.sign(claims)
    headers = {"Host": "127.0.0.1:3000", "Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Cookie": "a=1; b=2", "User-Agent": "test"}
    request = Request("POST", "/orders/123?dryRun=true&tag=a&tag=b", headers)
    authorizer = JwtAuthorizer(issuer.url, ["orders-api"], issuer.jwks())
    context = authorizer.authorize({k.lower(): v for k, v in headers.items()}, [])
    route = Route("POST", "/orders/{orderId}", function=None)
    event = payload(route, request, b'{"a": 1}', {"orderId": "123"}, context)
    assert differences(event, ["http-api-v2-jwt-no-route-scopes"]) == []
    assert "nothing" not in event["requestContext"]["authorizer"]["jwt"]["claims"]
    bare = payload(Route("GET", "/orders/{orderId}", function=None), Request("GET", "/orders/1", {"Host": "x"}),
                   b"", {"orderId": "1"}, authorizer.authorize({"authorization": f"Bearer {token}"}, ["openid"]))
    assert differences(bare, ["http-api-v2-jwt-route-scopes"]) == []


def test_a_body_is_text_for_textual_content_types_and_base64_otherwise():
    route = Route("POST", "/x", function=None)
    for content_type, body, encoded in (("application/json", b"a=1", False), ("text/plain; charset=utf-8", b"a=1", False),
                                        ("application/x-www-form-urlencoded", b"a=1", True), (None, b"a=1", True),
                                        ("application/json", b"\xff\xfe", True)):
        headers = {"Host": "x", **({"Content-Type": content_type} if content_type else {})}
        event = payload(route, Request("POST", "/x", headers), body, {}, None)
        assert event["isBase64Encoded"] is encoded, content_type
        assert event["body"] == (base64.b64encode(body).decode() if encoded else body.decode())
    bodiless = payload(route, Request("GET", "/x", {"Host": "x"}), b"", {}, None)
    assert bodiless["isBase64Encoded"] is False and "body" not in bodiless


@pytest.fixture
def queue(aws):
    sqs, events = aws("sqs"), aws("events")
    url = sqs.create_queue(QueueName="shapes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="shapes", EventPattern=json.dumps({"source": ["orders"]}))
    events.put_targets(Rule="shapes", Targets=[{"Id": "q", "Arn": arn}])
    yield sqs, events, url, arn
    events.remove_targets(Rule="shapes", Ids=["q"])
    events.delete_rule(Name="shapes")
    sqs.delete_queue(QueueUrl=url)


def test_an_sqs_batch_of_eventbridge_events_has_the_shape_lambda_sends(queue):
    sqs, events, url, arn = queue
    events.put_events(Entries=[{"Source": "orders", "DetailType": "OrderCreated",
                                "Detail": json.dumps({"orderId": str(i)})} for i in range(2)])
    function = Recorder()
    mapping = SqsMapping(function, "shapes", sqs, arn, {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]})
    mapping.poll()
    [batch] = function.payloads
    assert len(batch["Records"]) == 2
    assert differences(batch, ["sqs-eventbridge-batch"]) == []
    # A null answer, an empty object or an empty list is a complete success; an empty or
    # unknown identifier fails the batch (tests/corpus/sqs-batch-response.json).
    ids = {r["messageId"] for r in batch["Records"]}
    for answer in (None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}):
        assert mapping._failed(answer, batch["Records"]) == set(), answer
    for answer in ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"batchItemFailures": [{"id": "x"}]}):
        assert mapping._failed(answer, batch["Records"]) == ids, answer
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"  # deleted, not waiting


def test_message_attributes_have_the_shape_lambda_sends(queue):
    sqs, _, url, arn = queue
    sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes={
        "text": {"DataType": "String", "StringValue": "a"},
        "count": {"DataType": "Number", "StringValue": "3"},
        "thumb": {"DataType": "Binary", "BinaryValue": b"\x89PNG"}})
    function = Recorder()
    SqsMapping(function, "shapes", sqs, arn, {}).poll()
    [batch] = function.payloads
    assert differences(batch, ["sqs-message-attributes"]) == []
    assert batch["Records"][0]["messageAttributes"]["thumb"]["binaryValue"] == base64.b64encode(b"\x89PNG").decode()


@pytest.fixture
def stream(aws):
    dynamodb, streams = aws("dynamodb"), aws("dynamodbstreams")
    table = dynamodb.create_table(
        TableName="shapes", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})["TableDescription"]
    yield dynamodb, streams, table["LatestStreamArn"]
    dynamodb.delete_table(TableName="shapes")


def sent_to(destinations: list) -> Any:
    return lambda destination, info: destinations.append((destination, info))


def test_stream_records_and_the_on_failure_record_have_the_shapes_lambda_sends(stream):
    dynamodb, streams, arn = stream
    dynamodb.put_item(TableName="shapes", Item={"pk": {"S": "a"}, "n": {"N": "1"}, "m": {"M": {"k": {"BOOL": True}}}})
    dynamodb.update_item(TableName="shapes", Key={"pk": {"S": "a"}}, UpdateExpression="SET n = :n",
                         ExpressionAttributeValues={":n": {"N": "2"}})
    dynamodb.delete_item(TableName="shapes", Key={"pk": {"S": "a"}})
    function, destinations = Recorder(), []
    StreamMapping(function, "shapes", streams, None, arn, {}, sent_to(destinations)).poll()
    [batch] = function.payloads
    assert [r["eventName"] for r in batch["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert {r["eventVersion"] for r in batch["Records"]} == {"1.1"}  # moto's records say "1.0"
    assert differences(batch, ["dynamodb-stream-insert-modify", "dynamodb-stream-ttl-delete"]) == []

    failing = Recorder(fails=True)
    props = {"MaximumRetryAttempts": 0,
             "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}}}
    StreamMapping(failing, "shapes", streams, None, arn, props, sent_to(destinations)).poll()
    [(destination, info)] = destinations
    assert destination.endswith(":dlq")
    assert differences(info, ["dynamodb-stream-on-failure-record"]) == []
    assert info["responseContext"]["functionError"] == "Unhandled"


def test_a_scheduled_event_has_the_shape_eventbridge_sends():
    function = Recorder()
    mapping = ScheduleMapping(function, "shapes", "rate(1 minute)")
    mapping.next_run = time.time() - 1
    mapping.poll()
    [event] = function.payloads
    assert differences(event, ["eventbridge-scheduled-event"]) == []
