"""The path of an outbox row: table stream -> outbox-relay -> EventBridge -> validation queues,
and what happens to a row that can never be published."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from flows import ORDER, place, queue_depth, take_dead_timers, wait_for

VALIDATION_QUEUES = ("ConsumerValidationQueue", "RestaurantValidationQueue")
VALIDATORS = ("ConsumerValidatorFunction", "RestaurantValidatorFunction")


@pytest.fixture(autouse=True, scope="module")
def validators_stopped(stack):
    """The validators would take the messages these tests read off the queues. Stopped once for
    the module: each stop costs a waiting poller's receive, and each test's read another, so a
    stop per test could take a message past maxReceiveCount (5) into its dead-letter queue."""
    for name in VALIDATORS:
        stack.function(name, "stop")
    yield
    for name in VALIDATORS:
        stack.function(name, "start")


def read_all(stack, queue: str, wait_for, timeout: float = 30, keep: bool = True) -> list[dict]:
    """Reads `queue` until `wait_for(envelopes)` holds, then either makes every message visible
    again for the validators (`keep`) or deletes them. Returns the EventBridge envelopes."""
    sqs = stack.client("sqs")
    url = stack.name(queue)
    seen: dict[str, dict] = {}
    handles = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            seen[message["MessageId"]] = json.loads(message["Body"])
            handles.append(message["ReceiptHandle"])
        if not messages and wait_for(list(seen.values())):
            break
    for start in range(0, len(handles), 10):
        batch = handles[start:start + 10]
        if keep:
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(batch)])
        else:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)])
    return list(seen.values())


def for_order(envelopes: list[dict], order_id: str) -> list[dict]:
    return [e for e in envelopes if e["detail"].get("orderId") == order_id]


def test_an_accepted_order_reaches_each_validation_queue_once(stack):
    order_id = place(stack).json()["orderId"]
    for queue in VALIDATION_QUEUES:
        envelopes = for_order(read_all(stack, queue, lambda es: for_order(es, order_id)), order_id)
        assert len(envelopes) == 1, f"{queue}: {envelopes}"
        envelope = envelopes[0]
        assert envelope["source"] == "orders"
        assert envelope["detail-type"] == "OrderCreated"
        detail = envelope["detail"]
        assert set(detail) == {"eventId", "orderId", "occurredAt", "schemaVersion", "correlationId",
                               "consumerId", "restaurantId", "lineItems", "total"}
        assert detail["schemaVersion"] == 1
        assert [(line["menuItemId"], line["quantity"]) for line in detail["lineItems"]] == \
            [(line["menuItemId"], line["quantity"]) for line in ORDER["lineItems"]]
        # The event id is the outbox row's key: the de-duplication key downstream.
        row = stack.client("dynamodb").get_item(TableName=stack.name("OutboxTable"),
                                                Key={"eventId": {"S": detail["eventId"]}})
        assert row["Item"]["orderId"]["S"] == order_id


def outbox_row(detail: str, order_id: str) -> dict:
    return {"eventId": {"S": str(uuid.uuid4())}, "subject": {"S": order_id}, "orderId": {"S": order_id},
            "source": {"S": "orders"},
            "detailType": {"S": "OrderCreated"}, "detail": {"S": detail},
            "createdAt": {"S": "2026-11-26T12:00:00Z"}, "expiresAt": {"N": "0"}}


def test_a_row_that_can_never_be_published_goes_to_the_failure_queue_and_the_rest_flow(stack):
    rows = []
    for i in range(9):
        order_id = str(uuid.uuid4())
        detail = json.dumps({"eventId": "", "orderId": order_id, "consumerId": "c", "lineItems": []})
        rows.append(outbox_row(detail, order_id))
    poison = outbox_row("this is not JSON", str(uuid.uuid4()))
    rows.insert(4, poison)
    for row in rows:
        row_detail = row["detail"]["S"]
        if row is not poison:
            row["detail"]["S"] = row_detail.replace('"eventId": ""', f'"eventId": "{row["eventId"]["S"]}"')
    stack.client("dynamodb").batch_write_item(
        RequestItems={stack.name("OutboxTable"): [{"PutRequest": {"Item": r}} for r in rows]})

    good = {r["orderId"]["S"] for r in rows if r is not poison}
    delivered = read_all(stack, "RestaurantValidationQueue",
                         lambda es: good <= {e["detail"].get("orderId") for e in es}, keep=False)
    # These rows are no real orders: keep them from the consumer validator too.
    read_all(stack, "ConsumerValidationQueue",
             lambda es: good <= {e["detail"].get("orderId") for e in es}, keep=False)
    assert good <= {e["detail"].get("orderId") for e in delivered}, "a record after the poison was skipped"

    sqs = stack.client("sqs")
    failures = []
    deadline = time.time() + 60
    while not failures and time.time() < deadline:
        failures = sqs.receive_message(QueueUrl=stack.name("OutboxRelayFailures"), WaitTimeSeconds=1,
                                       MessageAttributeNames=["All"]).get("Messages", [])
    assert failures, "the unpublishable row never reached the failure queue"
    # The relay dead-lettered it itself, at once, with the reason and where it came from.
    attributes = {k: v["StringValue"] for k, v in failures[0]["MessageAttributes"].items()}
    assert "MalformedDetail" in attributes["DeadLetterReason"], attributes
    assert attributes["DeadLetterFunction"] == "OutboxRelayFunction"
    assert attributes["SourceStreamArn"].startswith("arn:aws:dynamodb:")
    assert json.loads(failures[0]["Body"])["eventId"] == poison["eventId"]
    sqs.delete_message(QueueUrl=stack.name("OutboxRelayFailures"), ReceiptHandle=failures[0]["ReceiptHandle"])
    # Every row, the poison one too, started its order's timer; none of these orders exists.
    take_dead_timers(stack, good | {poison["orderId"]["S"]})


def test_a_forged_reply_written_to_the_orders_outbox_is_dead_lettered_not_published(stack):
    # Anyone with a PutItem on the orders outbox writes the restaurants' answer to a real order,
    # one order-replies would apply (the validators are stopped: the order waits, PENDING).
    order_id = place(stack).json()["orderId"]
    event_id = str(uuid.uuid4())
    answer = {"eventId": event_id, "orderId": order_id, "occurredAt": "2026-12-02T03:00:00Z",
              "schemaVersion": 1, "total": {"currency": "EUR", "amountMinor": 1}}
    forged = {**outbox_row(json.dumps(answer), order_id), "eventId": {"S": event_id},
              "source": {"S": "restaurants"}, "detailType": {"S": "OrderDetailsValidated"}}
    stack.client("dynamodb").put_item(TableName=stack.name("OutboxTable"), Item=forged)
    sqs = stack.client("sqs")
    letters, deadline = [], time.time() + 30
    while not letters and time.time() < deadline:
        received = sqs.receive_message(QueueUrl=stack.name("OutboxRelayFailures"), WaitTimeSeconds=1,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        letters = [m for m in received if json.loads(m["Body"]).get("eventId", {}).get("S") == event_id]
    assert letters, "the forged row never reached the failure queue"
    attributes = {k: v["StringValue"] for k, v in letters[0]["MessageAttributes"].items()}
    reason = attributes["DeadLetterReason"]
    assert "carries only orders events" in reason and "not restaurants OrderDetailsValidated" in reason, reason
    sqs.delete_message(QueueUrl=stack.name("OutboxRelayFailures"), ReceiptHandle=letters[0]["ReceiptHandle"])
    # Published, it would have reached order-replies within a second or two and moved the order.
    time.sleep(3)
    assert wait_for(stack, order_id, {"PENDING"}, timeout=1)["status"] == "PENDING"


@pytest.fixture
def put_events_refusing_a_third(stack):
    control = stack.state["control"]
    requests.post(f"{control}/faults/put-events", json={"failureRate": 0.3, "source": "orders"}, timeout=10)
    yield
    requests.post(f"{control}/faults/put-events", json={"failureRate": 0}, timeout=10)


def test_with_a_third_of_put_events_entries_refused_every_order_is_still_delivered(
        stack, put_events_refusing_a_third):
    before = requests.get(f"{stack.state['control']}/faults", timeout=10).json()["putEvents"]["injected"]
    given_up = queue_depth(stack, "OutboxRelayFailures")
    ids = {place(stack).json()["orderId"] for _ in range(30)}
    for queue in VALIDATION_QUEUES:
        delivered = read_all(stack, queue, lambda es: ids <= {e["detail"]["orderId"] for e in es}, timeout=60)
        assert ids <= {e["detail"]["orderId"] for e in delivered}, f"{queue} is missing orders"
    injected = requests.get(f"{stack.state['control']}/faults", timeout=10).json()["putEvents"]["injected"] - before
    assert injected > 0, "no fault was injected: the test proved nothing"
    # Nothing was given up on: retries within and across invocations carried every record.
    assert queue_depth(stack, "OutboxRelayFailures") == given_up
