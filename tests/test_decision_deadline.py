"""The decision deadline, on a stack of its own whose deadline is 3 seconds: an order a validator
does not answer in time, or whose events the bus refuses, is REJECTED with VALIDATION_TIMEOUT,
and nothing after that changes it."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from conftest import ROOT, running_stack
from flows import ORDER, place, queue_depth, terminal_rows, wait_for
from metric_filters import assert_every_number_is_a_metric_once

DEADLINE = 3
LOGS = "deadline-logs"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # Loopback callbacks allowed: an order of the last test has one, which nothing receives.
    with running_stack("tests-deadline", LOGS,
                       f"DecisionDeadlineSeconds={DEADLINE} AllowLoopbackCallbacks=true") as running:
        yield running


def wait_until_empty(stack, queue: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while queue_depth(stack, queue) and time.time() < deadline:
        time.sleep(0.2)
    assert queue_depth(stack, queue) == 0, queue


def test_a_validator_stopped_past_the_deadline_rejects_the_order_and_its_late_reply_changes_nothing(stack):
    stack.function("RestaurantValidatorFunction", "stop")
    try:
        order_id = place(stack).json()["orderId"]
        shown = wait_for(stack, order_id, {"REJECTED", "VALIDATED"}, timeout=DEADLINE + 20)
        assert shown["status"] == "REJECTED", shown
        assert shown["rejectionReasons"] == ["VALIDATION_TIMEOUT"]
        statuses = [change["status"] for change in shown["history"]]
        assert statuses == ["PENDING", "CONSUMER_VALIDATED", "REJECTED"]
        took = (datetime.fromisoformat(shown["history"][-1]["at"])
                - datetime.fromisoformat(shown["history"][0]["at"])).total_seconds()
        assert took >= DEADLINE - 0.05, took  # not before its deadline (the delay is rounded up)
        assert terminal_rows(stack, order_id) == ["OrderRejected"]
    finally:
        stack.function("RestaurantValidatorFunction", "start")
    # The restaurant validator answers now: the reply is applied, changes nothing, is counted.
    wait_until_empty(stack, "RestaurantValidationQueue")
    wait_until_empty(stack, "OrderRepliesQueue")
    after = stack.request("GET", f"/orders/{order_id}").json()
    assert (after["status"], len(after["history"])) == ("REJECTED", 3)
    assert terminal_rows(stack, order_id) == ["OrderRejected"]
    logs = (ROOT / ".local" / LOGS / "OrderRepliesFunction.log").read_text()
    assert any(order_id in line and "after the order's deadline" in line for line in logs.splitlines())
    assert '"RepliesAfterDeadline"' in logs
    # A count only this stack sees: its metric filter is checked here (tests/metric_filters.py).
    written = assert_every_number_is_a_metric_once(ROOT / ".local" / LOGS)
    assert any("RepliesAfterDeadline" in record for record in written["OrderRepliesFunction"])
    wait_until_empty(stack, "OrderRepliesDLQ", timeout=0)


def test_an_order_decided_in_time_is_left_alone_by_its_deadline(stack):
    order_id = place(stack).json()["orderId"]
    shown = wait_for(stack, order_id, {"REJECTED", "VALIDATED"}, timeout=DEADLINE)
    assert shown["status"] == "VALIDATED", shown
    time.sleep(DEADLINE + 1)
    wait_until_empty(stack, "DecisionDeadlineQueue")
    after = stack.request("GET", f"/orders/{order_id}").json()
    assert after["status"] == "VALIDATED" and after["history"] == shown["history"]
    assert terminal_rows(stack, order_id) == ["OrderValidated"]


def test_an_order_whose_events_the_bus_refuses_is_decided_by_its_deadline_and_published_after(stack):
    """The bus refuses every event of the order context for longer than the deadline: the
    order's timer, started apart from the bus, decides it; once the bus accepts again, the
    relay, which never gave up, publishes OrderCreated and OrderRejected."""
    stack.function("OrderNotifierFunction", "stop")  # so the published outcome can be read
    stack.faults({"putEvents": {"failureRate": 1.0, "source": "orders"}})
    try:
        # With a callback URL: only such outcomes go to the notifier's queue. Nothing listens
        # there; the message is deleted once read.
        body = {**ORDER, "callbackUrl": "http://127.0.0.1:9/hooks"}
        order_id = place(stack, body).json()["orderId"]
        shown = wait_for(stack, order_id, {"REJECTED", "VALIDATED"}, timeout=DEADLINE + 20)
        assert shown["rejectionReasons"] == ["VALIDATION_TIMEOUT"], shown
        assert [change["status"] for change in shown["history"]] == ["PENDING", "REJECTED"]
        # Refused for longer still: the relay keeps trying (its retries come at most 2 s apart).
        refused = stack.faults()["putEvents"]["injected"]
        deadline = time.time() + 8
        while stack.faults()["putEvents"]["injected"] == refused and time.time() < deadline:
            time.sleep(0.2)
        assert stack.faults()["putEvents"]["injected"] > refused
    finally:
        stack.faults({"putEvents": {"failureRate": 0}})
    try:
        outcome = None
        sqs, url = stack.client("sqs"), stack.name("OutcomeNotificationsQueue")
        deadline = time.time() + 30
        while outcome is None and time.time() < deadline:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                               VisibilityTimeout=0).get("Messages", []):
                envelope = json.loads(message["Body"])
                if envelope["detail"]["orderId"] == order_id:
                    outcome = envelope
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert outcome and outcome["detail-type"] == "OrderRejected", "OrderRejected was never published"
    finally:
        stack.function("OrderNotifierFunction", "start")
    # OrderCreated was published too: both validators answered it, after the deadline.
    log = ROOT / ".local" / LOGS / "OrderRepliesFunction.log"
    deadline = time.time() + 30
    while time.time() < deadline:
        late = [line for line in log.read_text().splitlines()
                if order_id in line and "after the order's deadline" in line]
        if len(late) >= 2:
            break
        time.sleep(0.5)
    assert len(late) >= 2, late
    after = stack.request("GET", f"/orders/{order_id}").json()
    assert (after["status"], len(after["history"])) == ("REJECTED", 2)
    assert terminal_rows(stack, order_id) == ["OrderRejected"]
    wait_until_empty(stack, "OutboxRelayFailures", timeout=0)
