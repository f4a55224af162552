"""The operators' dashboard (template.yaml, OperationsDashboard) against the template and the code:
every reference resolves, every function and every dead-letter queue is on it, and every metric
of the OrderTaking namespace it charts is one a function emits. The linters check the resource;
only this checks that the picture is of this system."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.devstack.template import load

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = load(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
BODY_SOURCE: str = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
REFERENCE = re.compile(r"\$\{([^}]+)\}")


def _body() -> dict[str, Any]:
    # Each reference stands for itself, so that the charted metrics can be read back by name.
    return json.loads(REFERENCE.sub(lambda m: f"ref:{m.group(1)}", BODY_SOURCE))


def _metrics(title_part: str) -> list[list[Any]]:
    widgets = [w for w in _body()["widgets"] if title_part in w["properties"].get("title", "")]
    assert len(widgets) == 1, f"one widget titled ...{title_part}..."
    return widgets[0]["properties"]["metrics"]


def _names(rows: list[list[Any]]) -> set[str]:
    """The logical ids a widget's rows are about (their dimension's value)."""
    return {row[3].removeprefix("ref:").removesuffix(".QueueName") for row in rows}


def _of_type(kind: str) -> set[str]:
    return {name for name, r in RESOURCES.items() if r["Type"] == kind}


def test_every_reference_is_a_resource_or_a_pseudo_parameter():
    for reference in REFERENCE.findall(BODY_SOURCE):
        name, _, attribute = reference.partition(".")
        assert name.startswith("AWS::") or name in RESOURCES, reference
        if attribute:
            assert (RESOURCES[name]["Type"], attribute) == ("AWS::SQS::Queue", "QueueName"), reference


def test_the_body_is_json_within_the_grid():
    for widget in _body()["widgets"]:
        assert widget["x"] + widget["width"] <= 24, widget
        if widget["type"] == "metric":
            for row in widget["properties"]["metrics"]:
                # Written out in full: no "." or "..." shorthand to misread.
                assert "." not in row[:4] and "..." not in row, row


@pytest.mark.parametrize("title", ["errors", "throttles", "duration"])
def test_every_function_is_charted(title):
    assert _names(_metrics(title)) == _of_type("AWS::Serverless::Function"), title


def test_every_dead_letter_queue_is_charted():
    targets = {r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
               for r in RESOURCES.values() if "RedrivePolicy" in r.get("Properties", {})}
    # The relay's and the bus's failure queues are dead-letter queues too, filled by their writers.
    assert _names(_metrics("Dead letters")) == targets | {"OutboxRelayFailures", "EventDeliveryFailures"}


def test_every_queue_a_function_reads_has_its_oldest_message_charted():
    read = {event["Properties"]["Queue"]["Fn::GetAtt"][0]
            for r in RESOURCES.values() if r["Type"] == "AWS::Serverless::Function"
            for event in r["Properties"].get("Events", {}).values() if event["Type"] == "SQS"}
    # The deadline's timers wait there by design (DelaySeconds): their age says nothing.
    assert _names(_metrics("Oldest message")) == read - {"DecisionDeadlineQueue"}


def test_every_metric_of_the_namespace_is_emitted_by_a_function():
    sources = "".join(path.read_text() for path in (ROOT / "functions").rglob("*.rs"))
    charted = {row[1] for w in _body()["widgets"] if w["type"] == "metric"
               for row in w["properties"]["metrics"] if row[0] == "OrderTaking"}
    assert charted >= {"OrdersAccepted", "OrdersValidated", "OrdersRejected", "OrdersTimedOut",
                       "TimeToDecision", "RelayLag"}
    for name in charted:
        assert f'"{name}"' in sources, f"{name} is charted but no function emits it"
