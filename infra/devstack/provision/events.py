"""`AWS::Events::EventBus` and `AWS::Events::Rule` (SQS targets only)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..template import Resource, TemplateError
from . import check_properties

if TYPE_CHECKING:
    from ..stack import Stack


BUS_PROPERTIES = {"Name", "Description", "Tags"}
RULE_PROPERTIES = {"Name", "Description", "EventBusName", "EventPattern", "State", "Targets"}
TARGET_PROPERTIES = {"Arn", "Id", "RetryPolicy",
                     # deploy-only: moto delivers to SQS at once and never needs the DLQ
                     "DeadLetterConfig"}


def create_bus(stack: Stack, resource: Resource) -> None:
    check_properties(resource, BUS_PROPERTIES)
    name = stack.template.resolve(resource.properties["Name"], resource.logical_id)
    arn = stack.client("events").create_event_bus(Name=name)["EventBusArn"]
    stack.template.physical[resource.logical_id] = name
    stack.template.attributes[(resource.logical_id, "Arn")] = arn
    stack.template.attributes[(resource.logical_id, "Name")] = name


def create_rule(stack: Stack, resource: Resource) -> None:
    check_properties(resource, RULE_PROPERTIES)
    props = stack.template.resolve(resource.properties, resource.logical_id)
    for target in props.get("Targets", []):
        unknown = set(target) - TARGET_PROPERTIES
        if unknown:
            raise TemplateError(f"{resource.logical_id}.Targets: devstack does not support "
                                f"{', '.join(sorted(unknown))}")
        if ":sqs:" not in target["Arn"]:
            raise TemplateError(f"{resource.logical_id}: only SQS targets are emulated")
    name = props.get("Name", resource.logical_id)
    bus = props.get("EventBusName", "default")
    events = stack.client("events")
    arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]),
                          State=props.get("State", "ENABLED"))["RuleArn"]
    events.put_targets(Rule=name, EventBusName=bus, Targets=[
        {"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])])
    stack.template.physical[resource.logical_id] = name
    stack.template.attributes[(resource.logical_id, "Arn")] = arn
