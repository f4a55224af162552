"""What several end-to-end tests do: place an order, wait for its status, read a queue's depth,
store an order that only the test answers, and deliver replies to it."""

from __future__ import annotations

import json
import time
import uuid

import requests

ORDER = {
    "consumerId": "consumer-1",
    "restaurantId": "restaurant-1",
    "lineItems": [{"menuItemId": "item-1", "quantity": 2}, {"menuItemId": "item-2", "quantity": 1}],
}
JSON = {"Content-Type": "application/json"}


def place(stack, body=ORDER, headers=None):
    """Places `body` with its own consumer's token (unless `headers` hold another)."""
    token = {"Authorization": stack.bearer(body["consumerId"])}
    return stack.request("POST", "/orders", data=json.dumps(body),
                         headers={**JSON, **token, **(headers or {})})


def wait_for(stack, order_id: str, statuses: set[str], timeout: float = 30) -> dict:
    """The order once in one of `statuses` (read as an operator, whoever its consumer is)."""
    deadline = time.time() + timeout
    operator = {"Authorization": stack.bearer(operator=True)}
    while True:
        shown = stack.request("GET", f"/orders/{order_id}", headers=operator).json()
        if shown["status"] in statuses or time.time() > deadline:
            return shown
        time.sleep(0.1)


def wait_for_deliveries(got: list, count: int, timeout: float = 20) -> None:
    """Until a test's webhook receiver (the `receiver` fixture) has taken `count` deliveries."""
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        time.sleep(0.1)
    assert len(got) >= count, got


def queue_depth(stack, queue: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.name(queue), AttributeNames=["ApproximateNumberOfMessages",
                                                    "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def terminal_rows(stack, order_id: str) -> list[str]:
    return sorted(row["detailType"]["S"] for row in stack.scan("OutboxTable")
                  if row["orderId"]["S"] == order_id and row["detailType"]["S"] != "OrderCreated")


def pending_order(stack, order_id: str | None = None) -> str:
    """An order stored as PENDING without an OrderCreated, so no validator answers it: the
    test alone decides which replies arrive, and when."""
    order_id = order_id or str(uuid.uuid4())
    now = "2026-11-26T12:00:00Z"
    stack.client("dynamodb").put_item(TableName=stack.name("OrdersTable"), Item={
        "pk": {"S": f"ORDER#{order_id}"}, "orderId": {"S": order_id},
        "consumerId": {"S": "consumer-1"}, "restaurantId": {"S": "restaurant-1"},
        "lineItems": {"L": [{"M": {"menuItemId": {"S": "item-1"}, "quantity": {"N": "2"}}}]},
        "status": {"S": "PENDING"}, "version": {"N": "1"},
        "history": {"L": [{"M": {"status": {"S": "PENDING"}, "at": {"S": now}}}]}})
    return order_id


def reply_envelope(order_id: str, detail_type: str, **fields) -> dict:
    """A validator reply in the EventBridge envelope the bus delivers it in."""
    source = "consumers" if detail_type.startswith("Consumer") else "restaurants"
    detail = {"eventId": str(uuid.uuid4()), "orderId": order_id, "occurredAt": "2026-11-26T12:00:01Z",
              "schemaVersion": 1, **fields}
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "time": "2026-11-26T12:00:01Z", "region": "us-east-1", "resources": [], "detail": detail}


def reply(order_id: str, detail_type: str, **fields) -> dict:
    """An SQS event carrying one validator reply in its EventBridge envelope."""
    envelope = reply_envelope(order_id, detail_type, **fields)
    return {"Records": [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(envelope),
                         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:OrderRepliesQueue",
                         "awsRegion": "us-east-1"}]}


def invoke_replies(stack, event: dict) -> dict:
    answer = requests.post(f"{stack.state['control']}/functions/OrderRepliesFunction/invoke",
                           json=event, timeout=30).json()
    assert "result" in answer, answer
    return answer["result"]


def take_dead_timers(stack, order_ids: set[str], timeout: float = 30) -> int:
    """Deletes from OrderRepliesDLQ the deadline timers of outbox rows a test wrote for orders
    that do not exist (decision-timer starts one for every OrderCreated row; an old `createdAt`
    makes it fire at once, and order-replies dead-letters it: no such order). Fails unless one
    came for each order; answers how many were taken."""
    sqs, url = stack.client("sqs"), stack.name("OrderRepliesDLQ")
    seen: set[str] = set()
    taken = 0
    deadline = time.time() + timeout
    while time.time() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=5).get("Messages", []):
            order_id = json.loads(message["Body"]).get("decisionDeadline", {}).get("orderId")
            if order_id in order_ids:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                seen.add(order_id)
                taken += 1
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
        if seen == order_ids:
            break
    assert seen == order_ids, f"no timer came for {order_ids - seen}"
    return taken
