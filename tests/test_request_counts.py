"""The AWS requests each function makes, counted twice: by the SDK interceptor every client
carries (`awsRequests` by `<Service>.<Operation>` in each invocation's record) and by the
emulators at the other end (devstack's meter, `GET /stats`). They must agree, operation by
operation: the benchmark's requests per order, and the production metric, rest on the first.
The record's single numbers must each be a metric once (`metric_filters`)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import requests

from flows import ORDER, place, wait_for, wait_for_deliveries
from metric_filters import assert_every_number_is_a_metric_once, records

# The meter names an operation by its wire target; the SDK by the service's model name.
SERVICES = {"DynamoDB_20120810": "DynamoDB", "AWSEvents": "EventBridge", "AmazonSQS": "SQS",
            "secretsmanager": "Secrets Manager"}
FLOW = ["OrderApiFunction", "OutboxRelayFunction", "DecisionTimerFunction", "ConsumerValidatorFunction",
        "RestaurantValidatorFunction", "OrderRepliesFunction", "OrderNotifierFunction"]


def stats(stack) -> dict:
    return requests.get(f"{stack.state['control']}/stats", timeout=10).json()


def quiet(stack) -> dict:
    """The stats once no function has been invoked for two seconds."""
    last, since = stats(stack), time.time()
    while time.time() - since < 2:
        time.sleep(0.25)
        now = stats(stack)
        if now["functions"] != last["functions"]:
            last, since = now, time.time()
    return last


def log_sizes(stack) -> dict[str, int]:
    return {f: (Path(stack.state["logs"]) / f"{f}.log").stat().st_size for f in FLOW}


def sdk_counts(stack, since: dict[str, int]) -> Counter:
    counts: Counter = Counter()
    for function, offset in since.items():
        for record in records(Path(stack.state["logs"]) / f"{function}.log", offset):
            for operation, n in record.get("awsRequests", {}).items():
                counts[f"{function} {operation}"] += int(n)
    return counts


def meter_counts(before: dict, after: dict) -> Counter:
    counts: Counter = Counter()
    for key, value in after["requests"].items():
        caller, _, target = key.partition(" ")
        prefix, _, operation = target.partition(".")
        if caller not in FLOW or "." in operation:  # billed quantities, not requests
            continue
        n = value - before["requests"].get(key, 0)
        if n:
            counts[f"{caller} {SERVICES[prefix]}.{operation}"] += int(n)
    return counts


def test_the_sdk_and_the_emulators_count_the_same_requests(stack, receiver):
    url, got = receiver
    before, sizes = quiet(stack), log_sizes(stack)
    # The last with a callback URL: only its outcome goes to the notifier.
    for body in (ORDER, ORDER, {**ORDER, "callbackUrl": url}):
        order_id = place(stack, body).json()["orderId"]
        assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "VALIDATED"
    wait_for_deliveries(got, 1)
    after = quiet(stack)

    counted = sdk_counts(stack, sizes)
    assert counted == meter_counts(before, after)
    # Every function of the flow called AWS, and each order's transaction was counted.
    assert {key.split(" ")[0] for key in counted} == set(FLOW)
    assert counted["OrderApiFunction DynamoDB.TransactWriteItems"] == 3


def test_a_validator_reads_eventually_consistent_and_confirms_a_refusal_with_a_consistent_read(stack):
    def reads(body: dict) -> dict[str, tuple[float, float]]:
        """Each validator's GetItems and read units for one order of `body`, which is rejected."""
        before = quiet(stack)
        order_id = place(stack, body).json()["orderId"]
        assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "REJECTED"
        after = quiet(stack)

        def delta(key: str) -> float:
            return after["requests"].get(key, 0) - before["requests"].get(key, 0)

        return {function: (delta(f"{function} DynamoDB_20120810.GetItem"),
                           delta(f"{function} DynamoDB_20120810.GetItem.readUnits"))
                for function in ("ConsumerValidatorFunction", "RestaurantValidatorFunction")}

    # A validator that accepts reads once, at half a unit. One that refuses (the consumer or the
    # restaurant is unknown to everyone, so the replica let the order through) reads again,
    # consistently, to confirm. So does the consumer's when it answers with a limit the order
    # must keep to: the unknown restaurant's order came unpriced, and consumer-1 has a limit.
    assert reads({**ORDER, "restaurantId": "restaurant-unknown-to-everyone"}) == {
        "ConsumerValidatorFunction": (2, 1.5), "RestaurantValidatorFunction": (2, 1.5)}
    assert reads({**ORDER, "consumerId": "consumer-unknown-to-everyone"}) == {
        "ConsumerValidatorFunction": (2, 1.5), "RestaurantValidatorFunction": (1, 0.5)}


def test_every_number_of_every_record_is_a_metric_once_through_a_filter_or_emf(stack):
    """Across every record the session's functions wrote (the flows of the tests before this
    one too: rejections, callbacks, replica updates); the decision deadline's own stack checks
    its late replies the same way."""
    order_id = place(stack).json()["orderId"]
    assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "VALIDATED"
    quiet(stack)
    written = assert_every_number_is_a_metric_once(Path(stack.state["logs"]))
    assert all(written[function] for function in FLOW)
