"""`AWS::SQS::Queue`: its attributes as the template sets them; `Ref` is its URL."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..template import Resource
from . import check_properties

if TYPE_CHECKING:
    from ..stack import Stack


QUEUE_PROPERTIES = {"QueueName", "VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
                    "ReceiveMessageWaitTimeSeconds", "DelaySeconds", "MaximumMessageSize",
                    # deploy-only: encryption at rest and tags
                    "SqsManagedSseEnabled", "KmsMasterKeyId", "Tags"}


def create(stack: Stack, resource: Resource) -> None:
    check_properties(resource, QUEUE_PROPERTIES)
    props = stack.template.resolve(resource.properties, resource.logical_id)
    name = props.get("QueueName", resource.logical_id)
    attributes = {k: (json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in props.items()
                  if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
                           "ReceiveMessageWaitTimeSeconds", "DelaySeconds", "MaximumMessageSize")}
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.template.physical[resource.logical_id] = url
    stack.template.attributes[(resource.logical_id, "Arn")] = arn
    stack.template.attributes[(resource.logical_id, "QueueName")] = name
    stack.template.attributes[(resource.logical_id, "QueueUrl")] = url
