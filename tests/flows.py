"""What several end-to-end tests do: place an order, wait for its status, read a queue's depth."""

from __future__ import annotations

import json
import time

ORDER = {
    "consumerId": "consumer-1",
    "restaurantId": "restaurant-1",
    "lineItems": [{"menuItemId": "item-1", "quantity": 2}, {"menuItemId": "item-2", "quantity": 1}],
}
JSON = {"Content-Type": "application/json"}


def place(stack, body=ORDER, headers=None):
    return stack.request("POST", "/orders", data=json.dumps(body), headers={**JSON, **(headers or {})})


def wait_for(stack, order_id: str, statuses: set[str], timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while True:
        shown = stack.request("GET", f"/orders/{order_id}").json()
        if shown["status"] in statuses or time.time() > deadline:
            return shown
        time.sleep(0.1)


def queue_depth(stack, queue: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.name(queue), AttributeNames=["ApproximateNumberOfMessages",
                                                    "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attributes.values())
