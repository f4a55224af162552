"""The template's metric filters against the invocation records the functions wrote: each
single number of a record (`InvocationMs`, `AwsRequests`, the counts its handler measured) must be
made a metric exactly once, by a filter on its function's log group or by the record's EMF
declaration (`shared::platform::metrics`). devstack runs no filters; this is their check."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from infra.devstack.console import declared
from infra.devstack.template import load

ROOT = Path(__file__).resolve().parents[1]

# The one pattern these filters use: a JSON field present, whatever its value (CloudWatch Logs,
# "Filter pattern syntax for metric filters"). Another pattern fails here until emulated.
FIELD_PRESENT = re.compile(r"\{ \$\.(\w+) = \* \}")
# The units of the record's metrics (`shared::platform::metrics`): the rest are counts.
UNITS = {"InvocationMs": "Milliseconds"}


def records(log: Path, offset: int = 0) -> list[dict]:
    """The invocation records in `log` past `offset`."""
    found = []
    if not log.exists():
        return found
    with open(log, "rb") as f:
        f.seek(offset)
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "InvocationMs" in record:
                found.append(record)
    return found


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


def assert_every_number_is_a_metric_once(logs: Path) -> dict[str, list[dict]]:
    """Checks every record in `logs` (one `<Function>.log` each) against the template's filters;
    the records by function."""
    filters, functions = metric_filters()
    assert set(filters) == functions
    written = {}
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
        written[function] = records(logs / f"{function}.log")
        for record in written[function]:
            assert record["Function"] == function
            numbers = {k for k, v in record.items() if type(v) in (int, float)}
            assert {"InvocationMs", "AwsRequests"} <= numbers, record
            assert numbers - declared(record) <= set(by_field), (function, record)
            assert not declared(record) & set(by_field), (function, record)
    return written
