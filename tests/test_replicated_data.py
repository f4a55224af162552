"""Replicated data on the local stack: the consumer and restaurant contexts own their data and
publish each change; the order context's replica follows by events and prices and checks orders
at intake, while the validators stay the authority."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from flows import JSON, place, wait_for


def restaurant_body(price: int = 1000, available: bool = True, accepting: bool = True) -> dict:
    return {"name": "Test Kitchen", "acceptingOrders": accepting, "menu": [
        {"menuItemId": "dish", "name": "Dish", "price": {"currency": "EUR", "amountMinor": price},
         "available": available},
        {"menuItemId": "side", "name": "Side", "price": {"currency": "EUR", "amountMinor": 300},
         "available": True}]}


def put(stack, path: str, body: dict, token: str | None = None):
    return stack.request("PUT", path, data=json.dumps(body),
                         headers={**JSON, "Authorization": token or stack.bearer(operator=True)})


def order_for(restaurant: str, consumer: str = "consumer-1", quantity: int = 1) -> dict:
    return {"consumerId": consumer, "restaurantId": restaurant,
            "lineItems": [{"menuItemId": "dish", "quantity": quantity}]}


def replica_version(stack, key: str) -> int | None:
    item = stack.client("dynamodb").get_item(TableName=stack.name("ReplicasTable"),
                                             Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
    return int(item["version"]["N"]) if item else None


def wait_for_replica(stack, key: str, version: int, timeout: float = 15) -> float:
    started = time.time()
    while (replica_version(stack, key) or 0) < version:
        assert time.time() - started < timeout, f"{key} not at version {version} within {timeout} s"
        time.sleep(0.05)
    return time.time() - started


# template.yaml's ReplicaCacheSeconds: how long an order-api instance may use an entity it read.
REPLICA_CACHE_SECONDS = 2


def wait_for_intake(stack, key: str, version: int) -> None:
    """Until intake uses the version: the replica holds it, and every entity an order-api
    instance read before that has outlived its cache lifetime."""
    wait_for_replica(stack, key, version)
    time.sleep(REPLICA_CACHE_SECONDS + 0.1)


def new_restaurant(stack, **body) -> str:
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    answer = put(stack, f"/restaurants/{restaurant}", restaurant_body(**body))
    assert answer.status_code == 201, answer.text
    wait_for_replica(stack, f"RESTAURANT#{restaurant}", 1)
    return restaurant


def test_a_menu_change_is_used_at_intake_within_seconds(stack):
    restaurant = new_restaurant(stack, price=1000)
    first = place(stack, body=order_for(restaurant, quantity=2)).json()
    assert first["total"] == {"currency": "EUR", "amountMinor": 2000}
    changed = put(stack, f"/restaurants/{restaurant}", restaurant_body(price=1100))
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert wait_for_replica(stack, f"RESTAURANT#{restaurant}", 2) < 5
    time.sleep(REPLICA_CACHE_SECONDS + 0.1)  # the first order's instance read version 1
    assert place(stack, body=order_for(restaurant, quantity=2)).json()["total"]["amountMinor"] == 2200
    put(stack, f"/restaurants/{restaurant}", restaurant_body(price=1100, available=False))
    wait_for_intake(stack, f"RESTAURANT#{restaurant}", 3)
    refused = place(stack, body=order_for(restaurant))
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "lineItems[0].menuItemId", "message": "menu item dish is not available"}]


def test_a_put_of_the_same_state_is_no_new_version(stack):
    restaurant = new_restaurant(stack)
    again = put(stack, f"/restaurants/{restaurant}", restaurant_body())
    assert again.status_code == 200 and again.json()["version"] == 1
    assert stack.request("GET", f"/restaurants/{restaurant}").json()["version"] == 1


def envelope(detail_type: str, detail: dict) -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
                       "source": "consumers" if detail_type == "ConsumerUpdated" else "restaurants",
                       "account": "123456789012", "time": "2026-11-26T12:00:00Z", "region": "us-east-1",
                       "resources": [], "detail": detail})


def test_events_delivered_twice_and_in_reverse_leave_the_replica_at_the_latest_version(stack):
    consumer, restaurant = f"consumer-{uuid.uuid4().hex[:8]}", f"restaurant-{uuid.uuid4().hex[:8]}"
    def meta():
        return {"eventId": str(uuid.uuid4()), "occurredAt": "2026-11-26T12:00:00Z", "schemaVersion": 1}

    updates = []
    for version in (1, 2, 3):
        updates.append(envelope("ConsumerUpdated", {
            **meta(), "consumerId": consumer, "version": version, "name": f"v{version}", "status": "ACTIVE",
            "orderLimit": {"currency": "EUR", "amountMinor": version * 1000}}))
        updates.append(envelope("RestaurantUpdated", {
            **meta(), "restaurantId": restaurant, "version": version, "name": f"v{version}",
            "acceptingOrders": True, "menu": restaurant_body(price=version * 100)["menu"]}))
    sqs = stack.client("sqs")
    for body in list(reversed(updates)) * 2:
        sqs.send_message(QueueUrl=stack.name("ReplicaUpdatesQueue"), MessageBody=body)
    wait_for_replica(stack, f"CONSUMER#{consumer}", 3)
    wait_for_replica(stack, f"RESTAURANT#{restaurant}", 3)
    time.sleep(1)  # the older copies arrive too, and change nothing
    assert replica_version(stack, f"CONSUMER#{consumer}") == 3
    priced = place(stack, body=order_for(restaurant, consumer=consumer),
                   headers={"Authorization": stack.bearer(consumer)}).json()
    assert priced["total"]["amountMinor"] == 300  # version 3's price


@pytest.mark.parametrize("body, field, message", [
    (order_for("restaurant-1", consumer="consumer-2") | {"lineItems": [{"menuItemId": "item-1", "quantity": 1}]},
     "consumerId", "consumer consumer-2 is suspended"),
    ({"consumerId": "consumer-1", "restaurantId": "restaurant-2", "lineItems": [{"menuItemId": "item-1", "quantity": 1}]},
     "restaurantId", "restaurant restaurant-2 is not accepting orders"),
    ({"consumerId": "consumer-1", "restaurantId": "restaurant-1", "lineItems": [{"menuItemId": "item-9", "quantity": 1}]},
     "lineItems[0].menuItemId", "menu item item-9 is not on the menu of restaurant restaurant-1"),
    ({"consumerId": "consumer-1", "restaurantId": "restaurant-1", "lineItems": [{"menuItemId": "item-3", "quantity": 1}]},
     "lineItems[0].menuItemId", "menu item item-3 is not available"),
    ({"consumerId": "consumer-3", "restaurantId": "restaurant-1", "lineItems": [{"menuItemId": "item-1", "quantity": 3}]},
     "lineItems", "order total 37.50 EUR is over consumer consumer-3's limit of 30.00 EUR"),
], ids=["suspended consumer", "closed restaurant", "unknown item", "unavailable item", "over the limit"])
def test_what_the_replica_proves_wrong_is_refused_at_intake(stack, body, field, message):
    before = len(stack.scan("OrdersTable"))
    answer = place(stack, body=body)
    assert answer.status_code == 422, answer.text
    assert {"field": field, "message": message} in answer.json()["errors"]
    assert len(stack.scan("OrdersTable")) == before


def test_an_order_placed_before_a_price_change_is_rejected_for_the_price(stack):
    restaurant = new_restaurant(stack, price=1000)
    stack.function("RestaurantValidatorFunction", "stop")
    try:
        order_id = place(stack, body=order_for(restaurant)).json()["orderId"]
        put(stack, f"/restaurants/{restaurant}", restaurant_body(price=1200))
    finally:
        stack.function("RestaurantValidatorFunction", "start")
    shown = wait_for(stack, order_id, {"VALIDATED", "REJECTED"})
    assert shown["status"] == "REJECTED"
    assert shown["rejectionReasons"] == [
        f"the price changed: the order was placed at 10.00 EUR, restaurant {restaurant}'s menu now "
        "makes it 12.00 EUR; place it again at the new price"]


def test_the_consumer_context_applies_the_spending_limit_to_the_intake_total(stack):
    consumer = f"consumer-{uuid.uuid4().hex[:8]}"
    body = {"name": "Lim", "status": "ACTIVE", "orderLimit": {"currency": "EUR", "amountMinor": 5000}}
    assert put(stack, f"/consumers/{consumer}", body).status_code == 201
    wait_for_replica(stack, f"CONSUMER#{consumer}", 1)
    stack.function("ConsumerValidatorFunction", "stop")
    try:
        order = {"consumerId": consumer, "restaurantId": "restaurant-1",
                 "lineItems": [{"menuItemId": "item-1", "quantity": 2}]}
        order_id = place(stack, body=order).json()["orderId"]  # 25.00 EUR, within 50.00
        put(stack, f"/consumers/{consumer}", {**body, "orderLimit": {"currency": "EUR", "amountMinor": 2000}})
    finally:
        stack.function("ConsumerValidatorFunction", "start")
    shown = wait_for(stack, order_id, {"VALIDATED", "REJECTED"})
    assert shown["status"] == "REJECTED"
    assert shown["rejectionReasons"] == [f"order total 25.00 EUR is over consumer {consumer}'s limit of 20.00 EUR"]


def test_an_order_for_a_restaurant_not_yet_replicated_is_accepted_and_validated(stack):
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    stack.function("ReplicaUpdaterFunction", "stop")
    try:
        assert put(stack, f"/restaurants/{restaurant}", restaurant_body(price=900)).status_code == 201
        answer = place(stack, body=order_for(restaurant, quantity=2))
        assert answer.status_code == 202 and "total" not in answer.json()
        shown = wait_for(stack, answer.json()["orderId"], {"VALIDATED", "REJECTED"})
        assert (shown["status"], shown["total"]) == ("VALIDATED", {"currency": "EUR", "amountMinor": 1800})
    finally:
        stack.function("ReplicaUpdaterFunction", "start")
    wait_for_replica(stack, f"RESTAURANT#{restaurant}", 1)


@pytest.mark.parametrize("quantity, outcome", [(2, "VALIDATED"), (3, "REJECTED")])
def test_the_spending_limit_holds_for_an_order_accepted_unpriced(stack, quantity, outcome):
    """The replica does not know the restaurant: the order is accepted without a total, the
    consumer context answers with the limit, and the restaurant's total is held to it."""
    consumer = f"consumer-{uuid.uuid4().hex[:8]}"
    body = {"name": "Lim", "status": "ACTIVE", "orderLimit": {"currency": "EUR", "amountMinor": 2000}}
    assert put(stack, f"/consumers/{consumer}", body).status_code == 201
    wait_for_replica(stack, f"CONSUMER#{consumer}", 1)
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    stack.function("ReplicaUpdaterFunction", "stop")
    try:
        assert put(stack, f"/restaurants/{restaurant}", restaurant_body(price=900)).status_code == 201
        answer = place(stack, body=order_for(restaurant, consumer=consumer, quantity=quantity))
        assert answer.status_code == 202 and "total" not in answer.json(), answer.text
        shown = wait_for(stack, answer.json()["orderId"], {"VALIDATED", "REJECTED"})
    finally:
        stack.function("ReplicaUpdaterFunction", "start")
    wait_for_replica(stack, f"RESTAURANT#{restaurant}", 1)
    assert shown["status"] == outcome
    if outcome == "REJECTED":
        assert shown["rejectionReasons"] == [f"order total 27.00 EUR is over consumer {consumer}'s limit of 20.00 EUR"]


def test_only_an_operator_changes_consumers_and_menus(stack):
    consumer_token = stack.bearer("consumer-1")
    menu = put(stack, "/restaurants/restaurant-1", restaurant_body(price=1), token=consumer_token)
    assert menu.status_code == 403 and menu.json()["type"] == "/problems/forbidden"
    itself = put(stack, "/consumers/consumer-1", {"name": "Ada", "status": "ACTIVE"}, token=consumer_token)
    assert itself.status_code == 403
    assert stack.request("GET", "/restaurants/restaurant-1").json()["menu"][0]["price"]["amountMinor"] == 1250
    # A consumer reads itself, not another; an operator reads anyone.
    assert stack.request("GET", "/consumers/consumer-1").status_code == 200
    assert stack.request("GET", "/consumers/consumer-2").status_code == 404
    operator = {"Authorization": stack.bearer(operator=True)}
    assert stack.request("GET", "/consumers/consumer-2", headers=operator).json()["status"] == "SUSPENDED"
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    assert put(stack, f"/restaurants/{restaurant}", restaurant_body()).status_code == 201


def test_bad_input_to_the_owners_apis_is_refused_and_publishes_nothing(stack):
    restaurant = f"restaurant-{uuid.uuid4().hex[:8]}"
    mixed = restaurant_body()
    mixed["menu"][1]["price"]["currency"] = "USD"
    # A name that reads backwards from where a bidirectional control sits, a menu item id with a
    # zero-width space: format characters are refused like control characters.
    reversed_name = {**restaurant_body(), "name": "Pizza \u202eanul"}
    hidden_id = restaurant_body()
    hidden_id["menu"][0]["menuItemId"] = "item\u200b-1"
    for body, status in ((mixed, 422), ({"name": "x"}, 400), ({**restaurant_body(), "menu": "none"}, 400),
                         (reversed_name, 422), (hidden_id, 422)):
        answer = put(stack, f"/restaurants/{restaurant}", body)
        assert answer.status_code == status, answer.text
    assert stack.request("GET", f"/restaurants/{restaurant}").status_code == 404
    rows = [r for r in stack.scan("RestaurantsOutboxTable") if r["subject"]["S"] == restaurant]
    assert rows == []
    # A whole amount written as a decimal is an integer, as JSON Schema counts them.
    decimal = restaurant_body()
    decimal["menu"][0]["price"]["amountMinor"] = float(decimal["menu"][0]["price"]["amountMinor"])
    assert put(stack, f"/restaurants/{restaurant}", decimal).status_code == 201


def test_a_retry_after_the_restaurant_closed_is_answered_with_the_first_order(stack):
    """An honest retry (same Idempotency-Key, same body) gets the first answer, even once the
    replica would refuse the body; a new key for it is refused and writes nothing."""
    restaurant = new_restaurant(stack, price=1000)
    order = order_for(restaurant)
    first = place(stack, body=order, headers={"Idempotency-Key": "retry-after-close"})
    assert first.status_code == 202, first.text
    closed = put(stack, f"/restaurants/{restaurant}", restaurant_body(price=1000, accepting=False))
    assert closed.status_code == 200, closed.text
    wait_for_intake(stack, f"RESTAURANT#{restaurant}", 2)
    again = place(stack, body=order, headers={"Idempotency-Key": "retry-after-close"})
    assert again.status_code == 202, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["orderId"] == first.json()["orderId"]
    fresh = place(stack, body=order, headers={"Idempotency-Key": "a-new-order"})
    assert fresh.status_code == 422, fresh.text
    assert fresh.json()["type"] == "/problems/invalid-fields"
