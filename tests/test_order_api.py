"""POST /orders and GET /orders/{id} on the local stack, checked against what the emulator holds
and against docs/openapi.yaml (every call through `stack.request` is checked)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from flows import JSON, ORDER, place

def outbox_records(stack, order_id: str) -> list[dict]:
    return [row for row in stack.scan("OutboxTable") if row["orderId"]["S"] == order_id]


def stored_keys(stack) -> set[str]:
    """What POST /orders writes: orders, idempotency claims and OrderCreated rows. (Orders placed
    earlier may still be reaching VALIDATED meanwhile, adding their own outbox rows.)"""
    return {row["pk"]["S"] for row in stack.scan("OrdersTable")} | \
        {row["eventId"]["S"] for row in stack.scan("OutboxTable") if row["detailType"]["S"] == "OrderCreated"}


def test_a_valid_order_is_accepted_stored_and_announced_once(stack):
    response = place(stack, headers={"X-Correlation-Id": "e2e-accept"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING"
    order_id = body["orderId"]
    assert response.headers["Location"] == f"/orders/{order_id}"
    assert response.headers["X-Correlation-Id"] == "e2e-accept"

    shown = stack.request("GET", f"/orders/{order_id}")
    assert shown.status_code == 200
    order = shown.json()
    # The validators may already have answered: the order starts PENDING, whatever it is now.
    assert order["history"][0]["status"] == "PENDING"
    assert order["status"] != "REJECTED"
    # Priced from the replica of restaurant-1's menu (item-1 12.50 EUR, item-2 4.50 EUR).
    prices = {"item-1": 1250, "item-2": 450}
    assert order["lineItems"] == [{**line, "price": {"currency": "EUR", "amountMinor": prices[line["menuItemId"]]}}
                                  for line in ORDER["lineItems"]]
    assert order["total"] == {"currency": "EUR", "amountMinor": 2 * 1250 + 450}

    # The emulator itself, not the handler's word: one OrderCreated row (an OrderValidated one
    # may follow already).
    rows = [r for r in outbox_records(stack, order_id) if r["detailType"]["S"] == "OrderCreated"]
    assert len(rows) == 1
    detail = json.loads(rows[0]["detail"]["S"])
    assert detail["eventId"] == rows[0]["eventId"]["S"]
    assert detail["consumerId"] == "consumer-1"
    assert detail["lineItems"] == order["lineItems"] and detail["total"] == order["total"]
    assert detail["correlationId"] == "e2e-accept"
    item = stack.client("dynamodb").get_item(
        TableName=stack.name("OrdersTable"), Key={"pk": {"S": f"ORDER#{order_id}"}})["Item"]
    assert item["history"]["L"][0]["M"]["status"]["S"] == "PENDING"
    assert item["consumerId"]["S"] == "consumer-1"


def lines(n):
    return [{"menuItemId": f"item-{i}", "quantity": 1} for i in range(n)]


BAD_REQUESTS = [
    # (name, method, path, body bytes, headers, status, field named in the answer)
    ("malformed JSON", "POST", "/orders", b'{"consumerId": ', JSON, 400, None),
    ("not an object", "POST", "/orders", b"[1, 2]", JSON, 400, None),
    ("wrong type", "POST", "/orders", json.dumps({**ORDER, "consumerId": 42}), JSON, 400, "consumerId"),
    ("wrong nested type", "POST", "/orders",
     json.dumps({**ORDER, "lineItems": [{"menuItemId": "item-1", "quantity": "2"}]}), JSON, 400,
     "lineItems[0].quantity"),
    ("missing field", "POST", "/orders", json.dumps({"consumerId": "c", "lineItems": []}), JSON,
     400, "restaurantId"),
    ("unknown field", "POST", "/orders", json.dumps({**ORDER, "discount": 100}), JSON, 400, "discount"),
    ("zero quantity", "POST", "/orders",
     json.dumps({**ORDER, "lineItems": [{"menuItemId": "item-1", "quantity": 0}]}), JSON, 422,
     "lineItems[0].quantity"),
    ("negative quantity", "POST", "/orders",
     json.dumps({**ORDER, "lineItems": [{"menuItemId": "item-1", "quantity": -3}]}), JSON, 422,
     "lineItems[0].quantity"),
    ("huge quantity", "POST", "/orders",
     json.dumps({**ORDER, "lineItems": [{"menuItemId": "item-1", "quantity": 10**15}]}), JSON, 422,
     "lineItems[0].quantity"),
    ("no line items", "POST", "/orders", json.dumps({**ORDER, "lineItems": []}), JSON, 422, "lineItems"),
    ("51 line items", "POST", "/orders", json.dumps({**ORDER, "lineItems": lines(51)}), JSON, 422,
     "lineItems"),
    ("empty id", "POST", "/orders", json.dumps({**ORDER, "restaurantId": ""}), JSON, 422, "restaurantId"),
    ("65 KiB body", "POST", "/orders",
     json.dumps({**ORDER, "consumerId": "c" * (65 * 1024)}), JSON, 413, None),
    ("wrong content type", "POST", "/orders", json.dumps(ORDER), {"Content-Type": "text/plain"}, 415, None),
    ("no content type", "POST", "/orders", json.dumps(ORDER), {}, 415, None),
    ("bad idempotency key", "POST", "/orders", json.dumps(ORDER),
     {**JSON, "Idempotency-Key": "x" * 129}, 400, "Idempotency-Key"),
    ("unknown route", "GET", "/menus", b"", {}, 404, None),
    ("wrong method", "DELETE", "/orders", b"", {}, 405, None),
    ("unknown order id", "GET", f"/orders/{uuid.uuid4()}", b"", {}, 404, None),
    ("malformed order id", "GET", "/orders/not-an-id", b"", {}, 404, None),
]


def test_bad_input_gets_problem_json_and_writes_nothing(stack):
    before = stored_keys(stack)
    for name, method, path, body, headers, status, field in BAD_REQUESTS:
        response = stack.request(method, path, data=body, headers=headers)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        assert response.headers["Content-Type"] == "application/problem+json", name
        problem = response.json()
        assert problem["status"] == status, name
        if field:
            assert field in problem["detail"], f"{name}: {problem['detail']!r} names no {field}"
    assert stored_keys(stack) == before, "a refused request wrote something"


def test_a_retry_with_the_same_key_creates_one_order(stack):
    key = f"retry-{uuid.uuid4()}"
    first = place(stack, headers={"Idempotency-Key": key})
    again = place(stack, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    created = [r for r in outbox_records(stack, first.json()["orderId"]) if r["detailType"]["S"] == "OrderCreated"]
    assert len(created) == 1

    changed = place(stack, body={**ORDER, "lineItems": [{"menuItemId": "item-1", "quantity": 5}]},
                    headers={"Idempotency-Key": key})
    assert changed.status_code == 422
    assert changed.json()["type"] == "/problems/idempotency-key-reused"


def claim(stack, key: str, expires_at: int) -> None:
    """A claim of consumer-1's `key` by another request, as the order API stores it (keys are
    each caller's own: the subject, after its length, is part of the claim's key)."""
    stack.client("dynamodb").put_item(TableName=stack.name("OrdersTable"), Item={
        "pk": {"S": f"IDEMPOTENCY#10:consumer-1#{key}"}, "orderId": {"S": str(uuid.uuid4())},
        "fingerprint": {"S": "another request"}, "expiresAt": {"N": str(expires_at)}})


def test_a_key_is_free_again_once_its_window_has_passed_even_before_ttl_deletes_it(stack):
    now = int(time.time())
    live, expired = f"live-{uuid.uuid4()}", f"expired-{uuid.uuid4()}"
    claim(stack, live, now + 3600)
    claim(stack, expired, now - 1)  # TTL may leave it in the table for days
    assert place(stack, headers={"Idempotency-Key": live}).status_code == 422
    fresh = place(stack, headers={"Idempotency-Key": expired})
    assert fresh.status_code == 202 and "Idempotent-Replayed" not in fresh.headers
    again = place(stack, headers={"Idempotency-Key": expired})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == fresh.json()


def test_concurrent_retries_with_the_same_key_create_one_order(stack):
    key = f"concurrent-{uuid.uuid4()}"
    before = stored_keys(stack)
    answers, start = [], threading.Barrier(8)

    def send():
        start.wait()
        answers.append(place(stack, headers={"Idempotency-Key": key}))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["orderId"] for a in answers}) == 1
    created = stored_keys(stack) - before
    order_rows = [k for k in created if k.startswith("ORDER#")]
    assert len(order_rows) == 1
    # The order, its claim and its one outbox record.
    assert len(created) == 3


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_media_type_parameters_and_case_are_accepted(stack, content_type):
    response = stack.request("POST", "/orders", data=json.dumps(ORDER), headers={"Content-Type": content_type})
    assert response.status_code == 202
