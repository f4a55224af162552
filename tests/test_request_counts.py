"""The AWS requests each function makes, counted twice: by the SDK interceptor every client
carries (`awsRequests` by `<Service>.<Operation>` in each invocation's record) and by the
emulators at the other end (devstack's meter, `GET /stats`). They must agree, operation by
operation: the benchmark's requests per order, and the production metric, rest on the first."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import requests

from flows import place, wait_for

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
        with open(Path(stack.state["logs"]) / f"{function}.log", "rb") as log:
            log.seek(offset)
            for line in log:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
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


def test_the_sdk_and_the_emulators_count_the_same_requests(stack):
    before, sizes = quiet(stack), log_sizes(stack)
    for _ in range(3):
        order_id = place(stack).json()["orderId"]
        assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "VALIDATED"
    after = quiet(stack)

    counted = sdk_counts(stack, sizes)
    assert counted == meter_counts(before, after)
    # Every function of the flow called AWS, and each order's transaction was counted.
    assert {key.split(" ")[0] for key in counted} == set(FLOW)
    assert counted["OrderApiFunction DynamoDB.TransactWriteItems"] == 3
