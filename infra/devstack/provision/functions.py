"""`AWS::Serverless::Function`: the function behind the Runtime API, with its role's credentials,
and its event sources (HTTP API routes, schedules, SQS and stream mappings)."""

from __future__ import annotations

import functools
import json

import boto3
import botocore.config
from typing import TYPE_CHECKING, Any

from .. import iam
from ..http_api import Route
from ..mappings import Mapping, ScheduleMapping, SqsMapping
from ..stream_mapping import StreamMapping
from ..runtime import Function
from ..template import REGION, Resource, TemplateError
from . import check_properties
from .http_apis import route_auth

if TYPE_CHECKING:
    from ..stack import Stack


FUNCTION_PROPERTIES = {"Environment", "Events", "MemorySize", "Timeout", "FunctionName",
                       "ReservedConcurrentExecutions",
                       # deploy-only: code location, permissions, tracing and log shipping
                       "CodeUri", "Handler", "Runtime", "Architectures", "Policies", "Tracing",
                       "LoggingConfig", "Description", "Tags", "Role"}
SQS_EVENT_PROPERTIES = {"Queue", "BatchSize", "MaximumBatchingWindowInSeconds",
                        "FunctionResponseTypes", "FilterCriteria", "Enabled", "ScalingConfig"}
STREAM_EVENT_PROPERTIES = {"Stream", "StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds",
                           "BisectBatchOnFunctionError", "MaximumRetryAttempts", "DestinationConfig",
                           "FunctionResponseTypes", "FilterCriteria", "Enabled",
                           "ParallelizationFactor", "MaximumRecordAgeInSeconds"}

# Instances of a function that serves the HTTP API (the others run `--instances`).
API_INSTANCES = 6

# The functions' credentials; each signs with an access key of its own (`local-<function>`), so
# the emulator can tell their calls from devstack's (key "testing"), which are never faulted.
CREDENTIALS = {"AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def create(stack: Stack, resource: Resource) -> None:
    check_properties(resource, FUNCTION_PROPERTIES)
    where = resource.logical_id
    build = resource.metadata
    if build.get("BuildMethod") != "rust-cargolambda":
        raise TemplateError(f"{where}: only Metadata.BuildMethod rust-cargolambda is run locally")
    binary = build.get("BuildProperties", {}).get("Binary")
    if not binary:
        raise TemplateError(f"{where}: Metadata.BuildProperties.Binary names no binary")
    props = resource.properties
    name = stack.template.resolve(props.get("FunctionName", resource.logical_id), where)
    variables = stack.template.resolve(props.get("Environment", {}).get("Variables", {}), where)
    # A variable resolved to AWS::NoValue is absent, as CloudFormation leaves it.
    environment = {k: str(v) for k, v in variables.items() if v is not None}
    environment.update(CREDENTIALS)
    # Temporary credentials of the function's role, as Lambda gives them.
    environment["AWS_ACCESS_KEY_ID"] = f"local-{name}"
    environment["AWS_SESSION_TOKEN"] = f"local-session-{name}"
    stack.roles[environment["AWS_ACCESS_KEY_ID"]] = iam.role_of(stack.template, resource, name)
    environment["AWS_ENDPOINT_URL"] = stack.endpoint
    environment["AWS_ENDPOINT_URL_DYNAMODB"] = stack.dynamodb_endpoint
    emulator_ports = {int(e.rsplit(":", 1)[1]) for e in (stack.endpoint, stack.dynamodb_endpoint)}
    environment["LOCAL_STACK_PORTS"] = ",".join(
        str(p) for p in sorted(emulator_ports | set(stack.served_ports)))
    # Lambda scales a function behind an API with its requests; here the API's functions get
    # a few more instances than the others. Reserved concurrency is the most a function runs
    # at once, on AWS and here: beyond it an invocation is throttled.
    serves_api = any(e.get("Type") == "HttpApi" for e in props.get("Events", {}).values())
    instances = max(stack.instances, API_INSTANCES) if serves_api else stack.instances
    reserved = props.get("ReservedConcurrentExecutions")
    reserved = None if reserved is None else int(stack.template.resolve(reserved, where))
    function = Function(name, stack.bin_dir / binary, environment,
                        int(props.get("Timeout", 3)), int(props.get("MemorySize", 128)),
                        stack.log_dir, instances, reserved)
    stack.functions[resource.logical_id] = function
    stack.template.physical[resource.logical_id] = name
    stack.template.attributes[(resource.logical_id, "Arn")] = function.arn
    for event_name, event in props.get("Events", {}).items():
        create_event_source(stack, resource, function, event_name, event)


def create_event_source(stack: Stack, resource: Resource, function: Function, name: str,
                         event: dict[str, Any]) -> None:
    where = f"{resource.logical_id}.Events.{name}"
    kind = event.get("Type")
    props = event.get("Properties", {})
    if kind == "HttpApi":
        unknown = set(props) - {"ApiId", "Path", "Method", "PayloadFormatVersion", "Auth"}
        if unknown:
            raise TemplateError(f"{where}: devstack does not support {', '.join(sorted(unknown))}")
        if str(props.get("PayloadFormatVersion", "2.0")) != "2.0":
            raise TemplateError(f"{where}: only payload format 2.0 is emulated")
        method = props["Method"].upper()
        authorizer, scopes = route_auth(stack, where, props.get("ApiId"),
                                              stack.template.resolve(props.get("Auth", {}), where))
        stack.routes.append(Route("ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD")
                                 else method, props["Path"], function, authorizer, scopes))
    elif kind == "Schedule":
        unknown = set(props) - {"Schedule", "Enabled", "Description", "Name"}
        if unknown:
            raise TemplateError(f"{where}: devstack does not support {', '.join(sorted(unknown))}")
        if props.get("Enabled", True):
            stack.mappings.append(ScheduleMapping(function, where, props["Schedule"]))
    elif kind in ("SQS", "DynamoDB"):
        allowed = SQS_EVENT_PROPERTIES if kind == "SQS" else STREAM_EVENT_PROPERTIES
        unknown = set(props) - allowed
        if unknown:
            raise TemplateError(f"{where}: devstack does not support {', '.join(sorted(unknown))}")
        props = stack.template.resolve(props, where)
        if not props.get("Enabled", True):
            stack.notes.append(f"{where}: disabled in the template")
            return
        if kind == "SQS":
            mapping: Mapping = SqsMapping(function, where, stack.client("sqs"), props["Queue"], props,
                                 stack.delivery_faults)
        else:
            destination = (props.get("DestinationConfig") or {}).get("OnFailure", {})
            if destination and ":sqs:" not in destination.get("Destination", ""):
                raise TemplateError(f"{where}: only an SQS on-failure destination is emulated")
            readers = [m.where for m in stack.mappings
                       if isinstance(m, StreamMapping) and m.stream_arn == props["Stream"]]
            if len(readers) >= 2:
                # DynamoDB Streams throttles a third reader of a shard (LimitExceededException:
                # "More than 2 processes are reading from the same streams shard").
                raise TemplateError(f"{where}: a third reader of a stream {readers} would be throttled")
            mapping = StreamMapping(function, where, stack.client("dynamodbstreams"),
                                    stack.client("sqs"), props["Stream"], props,
                                    functools.partial(send_failure, stack, function),
                                    stack.delivery_faults)
        stack.mappings.append(mapping)
    else:
        raise TemplateError(f"{where}: event source type {kind} is not emulated by devstack")


def send_failure(stack: Stack, function: Function, destination_arn: str, record: dict[str, Any]) -> None:
    """Lambda sends a stream batch's on-failure record with the function's execution role, so
    the role must allow it: the send is signed with the function's credentials."""
    url = stack.client("sqs").get_queue_url(QueueName=destination_arn.split(":")[-1])["QueueUrl"]
    sqs = boto3.client("sqs", endpoint_url=stack.endpoint, region_name=REGION,
                       aws_access_key_id=function.environment["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=function.environment["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=function.environment["AWS_SESSION_TOKEN"],
                       config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 10}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
