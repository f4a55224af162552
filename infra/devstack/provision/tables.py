"""`AWS::DynamoDB::Table`: the table, its stream and its TTL; `Ref` is its name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..template import Resource
from . import check_properties

if TYPE_CHECKING:
    from ..stack import Stack


TABLE_PROPERTIES = {"TableName", "KeySchema", "AttributeDefinitions", "BillingMode",
                    "ProvisionedThroughput", "StreamSpecification", "TimeToLiveSpecification",
                    "GlobalSecondaryIndexes", "PointInTimeRecoverySpecification",
                    "DeletionProtectionEnabled", "SSESpecification", "Tags"}


def create(stack: Stack, resource: Resource) -> None:
    check_properties(resource, TABLE_PROPERTIES)
    props = stack.template.resolve(resource.properties, resource.logical_id)
    name = props.get("TableName", resource.logical_id)
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in props:
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if "GlobalSecondaryIndexes" in props:
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    dynamodb = stack.client("dynamodb")
    table = dynamodb.create_table(**request)["TableDescription"]
    if props.get("TimeToLiveSpecification", {}).get("Enabled"):
        dynamodb.update_time_to_live(TableName=name,
                                     TimeToLiveSpecification=props["TimeToLiveSpecification"])
    stack.template.physical[resource.logical_id] = name
    stack.template.attributes[(resource.logical_id, "Arn")] = table["TableArn"]
    if "LatestStreamArn" in table:
        stack.template.attributes[(resource.logical_id, "StreamArn")] = table["LatestStreamArn"]
