"""The local stack behaves as AWS does under concurrency, and the code copes: overlapping writes
to one order conflict by themselves, and the conflict is settled inside the invocation."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from flows import ORDER, invoke_replies, pending_order, place, reply, terminal_rows

TOTAL = {"currency": "EUR", "amountMinor": 2500}


@pytest.fixture
def slow_transactions(stack):
    """Transactions in flight for 50 ms (DynamoDB takes a few): writers that meet overlap."""
    before = stack.faults()["transactionHoldMs"]
    stack.faults({"transactionHoldMs": 50})
    yield
    stack.faults({"transactionHoldMs": before})


def conflicts(stack) -> int:
    counts = stack.faults()["counts"]
    return counts.get("dynamodb:TransactionConflict", 0) + counts.get("dynamodb:TransactionConflictException", 0)


def at_once(calls) -> list:
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        start.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_replies_written_at_the_same_moment_conflict_and_still_validate_at_once(stack, slow_transactions):
    before = conflicts(stack)
    order_ids = []
    for _ in range(5):
        order_id = pending_order(stack)
        invoke_replies(stack, reply(order_id, "ConsumerValidated"))
        # The restaurant's answer, delivered twice at once (EventBridge and SQS are at least
        # once): both deciding writes are transactions on the same order.
        event = reply(order_id, "OrderDetailsValidated", total=TOTAL)
        began = time.time()
        results = at_once([lambda: invoke_replies(stack, event)] * 2)
        took = time.time() - began
        assert [r["batchItemFailures"] for r in results] == [[], []], "a conflict went back to SQS"
        assert took < 10, f"settled in {took:.1f} s"
        order_ids.append(order_id)
    assert conflicts(stack) > before, "no conflict happened: the test proved nothing"
    for order_id in order_ids:
        shown = stack.request("GET", f"/orders/{order_id}").json()
        assert shown["status"] == "VALIDATED" and shown["total"] == TOTAL
        assert terminal_rows(stack, order_id) == ["OrderValidated"]


def test_one_idempotency_key_sent_three_times_at_once_makes_one_order(stack, slow_transactions):
    before = conflicts(stack)
    key = str(uuid.uuid4())
    answers = at_once([lambda: place(stack, headers={"Idempotency-Key": key})] * 3)
    assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
    assert len({a.json()["orderId"] for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true", "true"]
    assert conflicts(stack) > before, "no conflict happened: the test proved nothing"
    order_id = answers[0].json()["orderId"]
    rows = [r for r in stack.scan("OutboxTable") if r["orderId"]["S"] == order_id]
    assert [r["detailType"]["S"] for r in rows].count("OrderCreated") == 1
    assert stack.request("GET", f"/orders/{order_id}").json()["consumerId"] == ORDER["consumerId"]
