"""The AWS requests each function makes, counted twice: by the SDK interceptor every client
carries (`awsRequests` by `<Service>.<Operation>` in each invocation's record) and by the
emulators at the other end (devstack's meter, `GET /stats`). They must agree, operation by
operation: the benchmark's requests per order, and the production metric, rest on the first.
The record's single numbers (`InvocationMs`, `AwsRequests`, the counts its handler measured) are
made metrics by the template's metric filters from its fields: every one must have its filter."""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests

from flows import place, wait_for
from infra.devstack.template import load

ROOT = Path(__file__).resolve().parents[1]

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


def records(stack, function: str, offset: int) -> list[dict]:
    """The invocation records `function` wrote past `offset` in its log."""
    found = []
    with open(Path(stack.state["logs"]) / f"{function}.log", "rb") as log:
        log.seek(offset)
        for line in log:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "InvocationMs" in record:
                found.append(record)
    return found


def sdk_counts(stack, since: dict[str, int]) -> Counter:
    counts: Counter = Counter()
    for function, offset in since.items():
        for record in records(stack, function, offset):
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


# The one pattern these filters use: a JSON field present, whatever its value (CloudWatch Logs,
# "Filter pattern syntax for metric filters"). Another pattern fails here until emulated.
FIELD_PRESENT = re.compile(r"\{ \$\.(\w+) = \* \}")
# The units of the record's metrics (`shared::platform::metrics`): the rest are counts.
UNITS = {"InvocationMs": "Milliseconds"}


def metric_filters() -> tuple[dict[str, list[dict]], set[str]]:
    """The template's metric filters by the function whose log group they read; the functions."""
    resources = load(ROOT / "template.yaml")["Resources"]
    filters: defaultdict[str, list[dict]] = defaultdict(list)
    for spec in resources.values():
        if spec["Type"] == "AWS::Logs::MetricFilter":
            group = resources[spec["Properties"]["LogGroupName"]["Ref"]]["Properties"]["LogGroupName"]
            function = re.fullmatch(r"/aws/lambda/\$\{(\w+)\}", group["Fn::Sub"]).group(1)
            filters[function].append(spec["Properties"])
    functions = {name for name, spec in resources.items() if spec["Type"] == "AWS::Serverless::Function"}
    return filters, functions


def declared(record: dict) -> set[str]:
    """The metrics `record` declares in EMF."""
    return {m["Name"] for d in record.get("_aws", {}).get("CloudWatchMetrics", []) for m in d["Metrics"]}


def test_every_number_of_every_record_is_a_metric_once_through_a_filter_or_emf(stack):
    """Across every record the session's functions wrote (the flows of the tests before this
    one too: rejections, callbacks, replica updates), each single number is a metric of exactly
    one kind: a metric filter on its function's log group, or an EMF declaration."""
    order_id = place(stack).json()["orderId"]
    assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "VALIDATED"
    quiet(stack)

    filters, functions = metric_filters()
    assert set(filters) == functions
    for function in functions:
        by_field = {}
        for spec in filters[function]:
            field = FIELD_PRESENT.fullmatch(spec["FilterPattern"]).group(1)
            (transformation,) = spec["MetricTransformations"]
            assert transformation["MetricNamespace"] == "OrderTaking"
            assert transformation["MetricName"] == field
            assert transformation["Unit"] == UNITS.get(field, "Count")
            assert transformation["MetricValue"] == f"$.{field}"
            assert transformation["Dimensions"] == [{"Key": "Function", "Value": "$.Function"}]
            by_field[field] = transformation
        assert {"InvocationMs", "AwsRequests"} <= set(by_field), function

        log = Path(stack.state["logs"]) / f"{function}.log"
        written = records(stack, function, 0) if log.exists() else []
        assert written or function not in FLOW, function
        for record in written:
            assert record["Function"] == function
            numbers = {k for k, v in record.items() if type(v) in (int, float)}
            assert {"InvocationMs", "AwsRequests"} <= numbers, record
            assert numbers - declared(record) <= set(by_field), (function, record)
            assert not declared(record) & set(by_field), (function, record)
