"""The whole flow on the local stack: validators answer, the order context applies the answers,
and every accepted order ends VALIDATED or REJECTED, even when a validator was down meanwhile."""

from __future__ import annotations

import threading

import pytest

from flows import invoke_replies, pending_order, place, queue_depth, reply, terminal_rows, wait_for

EUR = "EUR"


def order(consumer="consumer-1", restaurant="restaurant-1", lines=(("item-1", 2), ("item-2", 1))):
    return {"consumerId": consumer, "restaurantId": restaurant,
            "lineItems": [{"menuItemId": m, "quantity": q} for m, q in lines]}


def test_a_valid_order_is_validated_with_its_priced_total(stack):
    order_id = place(stack, body=order()).json()["orderId"]
    shown = wait_for(stack, order_id, {"VALIDATED", "REJECTED"})
    assert shown["status"] == "VALIDATED", shown
    assert shown["total"] == {"currency": EUR, "amountMinor": 2 * 1250 + 450}
    statuses = [change["status"] for change in shown["history"]]
    assert statuses[0] == "PENDING" and statuses[2] == "VALIDATED" and len(statuses) == 3
    assert statuses[1] in {"CONSUMER_VALIDATED", "ORDER_DETAILS_VALIDATED"}
    times = [change["at"] for change in shown["history"]]
    assert times == sorted(times)
    assert terminal_rows(stack, order_id) == ["OrderValidated"]


# What the order context's replica does not know is accepted, and the validators reject it.
@pytest.mark.parametrize("body, reason, priced", [
    (order(consumer="consumer-9"), "consumer consumer-9 is unknown", True),
    (order(restaurant="restaurant-9"), "restaurant restaurant-9 is unknown", False),
], ids=["unknown consumer", "unknown restaurant"])
def test_an_order_that_fails_validation_is_rejected_with_the_reason(stack, body, reason, priced):
    answer = place(stack, body=body, headers={"Authorization": stack.bearer(operator=True)})
    assert answer.status_code == 202 and ("total" in answer.json()) == priced
    shown = wait_for(stack, answer.json()["orderId"], {"VALIDATED", "REJECTED"})
    assert shown["status"] == "REJECTED", shown
    assert reason in shown["rejectionReasons"]
    assert terminal_rows(stack, shown["orderId"]) == ["OrderRejected"]


TOTAL = {"currency": EUR, "amountMinor": 2500}


@pytest.mark.parametrize("sequence", [
    ["ConsumerValidated", "ConsumerValidated", "OrderDetailsValidated", "OrderDetailsValidated"],
    ["OrderDetailsValidated", "ConsumerValidated", "OrderDetailsValidated", "ConsumerValidated"],
], ids=["consumer first", "restaurant first"])
def test_replies_in_either_order_and_twice_each_validate_once(stack, sequence):
    order_id = pending_order(stack)
    for detail_type in sequence:
        fields = {"total": TOTAL} if detail_type == "OrderDetailsValidated" else {}
        assert invoke_replies(stack, reply(order_id, detail_type, **fields))["batchItemFailures"] == []
    shown = stack.request("GET", f"/orders/{order_id}").json()
    assert shown["status"] == "VALIDATED"
    assert shown["total"] == TOTAL
    assert terminal_rows(stack, order_id) == ["OrderValidated"]


def test_replies_at_the_same_instant_validate_once(stack):
    # Two instances of the function apply the two replies at once, ten orders over.
    for _ in range(10):
        order_id = pending_order(stack)
        events = [reply(order_id, "ConsumerValidated"), reply(order_id, "OrderDetailsValidated", total=TOTAL)]
        start, results = threading.Barrier(2), []

        def deliver(event):
            start.wait()
            results.append(invoke_replies(stack, event))

        threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r["batchItemFailures"] for r in results] == [[], []]
        shown = stack.request("GET", f"/orders/{order_id}").json()
        assert shown["status"] == "VALIDATED"
        assert [c["status"] for c in shown["history"]][-1] == "VALIDATED"
        assert len(shown["history"]) == 3
        assert terminal_rows(stack, order_id) == ["OrderValidated"]


@pytest.mark.parametrize("down, queue, halfway", [
    ("ConsumerValidatorFunction", "ConsumerValidationQueue", "ORDER_DETAILS_VALIDATED"),
    ("RestaurantValidatorFunction", "RestaurantValidationQueue", "CONSUMER_VALIDATED"),
], ids=["consumer validator down", "restaurant validator down"])
def test_orders_are_accepted_while_a_validator_is_down_and_validated_when_it_returns(stack, down, queue, halfway):
    stack.function(down, "stop")
    try:
        answers = [place(stack, body=order()) for _ in range(50)]
        assert [a.status_code for a in answers] == [202] * 50
        ids = [a.json()["orderId"] for a in answers]
        # The other validator answers; the stopped one's messages wait in its queue.
        shown = [wait_for(stack, i, {halfway}, timeout=60) for i in ids]
        assert [s["status"] for s in shown] == [halfway] * 50
        assert queue_depth(stack, queue) >= 50
    finally:
        stack.function(down, "start")
    finished = [wait_for(stack, i, {"VALIDATED", "REJECTED"}, timeout=90) for i in ids]
    assert [s["status"] for s in finished] == ["VALIDATED"] * 50
    for i in ids:
        assert terminal_rows(stack, i) == ["OrderValidated"]


def test_no_message_ended_on_a_dead_letter_queue(stack):
    # test_outbox_relay takes out the poison row it puts in OutboxRelayFailures.
    for dlq in ("ConsumerValidationDLQ", "RestaurantValidationDLQ", "OrderRepliesDLQ", "ReplicaUpdatesDLQ",
                "EventDeliveryFailures", "OutboxRelayFailures"):
        if queue_depth(stack, dlq):
            # Peek (visibility 0), so the failure shows why each message was dead-lettered.
            found = stack.client("sqs").receive_message(
                QueueUrl=stack.name(dlq), MaxNumberOfMessages=10, VisibilityTimeout=0,
                MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
            pytest.fail(f"{dlq} holds {[(m.get('MessageAttributes'), m['Attributes'], m['Body'][:300]) for m in found]}")
