"""Creates the template's resources on the local stack, one module per kind of resource; each
refuses a property it does not emulate, naming it, rather than skip it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..template import Resource, TemplateError

if TYPE_CHECKING:
    from ..stack import Stack

# Types that shape only the deployed stack: permissions, logs and their metric filters, alarms and
# the dashboard have no local effect (the console shows the local stack instead; the metric
# filters' patterns are checked against the functions' records by tests/metric_filters.py).
# They are listed at start-up, so that nothing is skipped silently.
DEPLOY_ONLY = {"AWS::Logs::LogGroup", "AWS::Logs::MetricFilter", "AWS::CloudWatch::Alarm",
               "AWS::CloudWatch::Dashboard", "AWS::SQS::QueuePolicy", "AWS::SNS::Topic",
               "AWS::SNS::Subscription", "AWS::IAM::Role", "AWS::IAM::Policy"}

SUPPORTED = {"AWS::DynamoDB::Table", "AWS::Serverless::Function", "AWS::Serverless::HttpApi", "AWS::SQS::Queue",
             "AWS::Events::EventBus", "AWS::Events::Rule", "AWS::SecretsManager::Secret"}


def check_properties(resource: Resource, allowed: set[str]) -> None:
    unknown = sorted(set(resource.properties) - allowed)
    if unknown:
        raise TemplateError(f"{resource.logical_id} ({resource.type}): devstack does not "
                            f"support {', '.join(unknown)}")


def create(stack: Stack) -> None:
    """Every resource, in an order that lets each name those it depends on."""
    from . import events, functions, http_apis, queues, secrets_manager, tables

    template = stack.template
    for table in template.of_type("AWS::DynamoDB::Table"):
        tables.create(stack, table)
    # Dead-letter queues first: the queues that redrive to them name their ARNs.
    for queue in sorted(template.of_type("AWS::SQS::Queue"), key=lambda q: "RedrivePolicy" in q.properties):
        queues.create(stack, queue)
    for secret in template.of_type("AWS::SecretsManager::Secret"):
        secrets_manager.create(stack, secret)
    for bus in template.of_type("AWS::Events::EventBus"):
        events.create_bus(stack, bus)
    for rule in template.of_type("AWS::Events::Rule"):
        events.create_rule(stack, rule)
    for api in template.of_type("AWS::Serverless::HttpApi"):
        http_apis.create(stack, api)
    for function in template.of_type("AWS::Serverless::Function"):
        functions.create(stack, function)
