"""IAM enforced on the local stack, on a stack of its own whose template is changed: a needed
permission removed makes the function's call fail with access denied and the order take its
failure path (a few receives, then the function dead-letters it with the AWS error code as the
reason; nothing lost); an explicit deny wins over an allow; a function's credentials cannot read
another context's table."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, running_stack
from flows import place, queue_depth, wait_for

LOGS = "iam-logs"
# The consumer validator loses its read of its own table.
NEEDED = ("""              Action: [dynamodb:GetItem]
              Resource: !GetAtt ConsumersTable.Arn
""", """              Action: [dynamodb:DescribeTable]
              Resource: !GetAtt ConsumersTable.Arn
""")
# order-api keeps its allow on the replica, and gains a deny of the same.
DENIED = ("""              Action: [dynamodb:GetItem]
              Resource: !GetAtt ReplicasTable.Arn
""", """              Action: [dynamodb:GetItem]
              Resource: !GetAtt ReplicasTable.Arn
            - Effect: Deny
              Action: [dynamodb:GetItem]
              Resource: !GetAtt ReplicasTable.Arn
""")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("iam")
    text = (ROOT / "template.yaml").read_text()
    for old, new in (NEEDED, DENIED):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    template = directory / "template.yaml"
    template.write_text(text)
    # Short visibility: three receives, and the function dead-letters the message within a minute.
    with running_stack("tests-iam", LOGS, "QueueVisibilityTimeout=10", template) as running:
        yield running


def function_client(stack, service: str, function: str):
    """A client signing with the function's own credentials, as the function does."""
    return boto3.client(service, endpoint_url=stack.state["endpoint"], region_name=stack.state["region"],
                        aws_access_key_id=f"local-{function}", aws_secret_access_key="testing",
                        aws_session_token=f"local-session-{function}")


def test_a_removed_permission_dead_letters_with_the_aws_code_in_the_reason(stack):
    order_id = place(stack).json()["orderId"]
    # The restaurant answers; the consumer validator is denied its read, retried, dead-lettered.
    assert wait_for(stack, order_id, {"ORDER_DETAILS_VALIDATED"})["status"] == "ORDER_DETAILS_VALIDATED"
    deadline = time.time() + 120
    while not queue_depth(stack, "ConsumerValidationDLQ") and time.time() < deadline:
        time.sleep(1)
    letters = stack.client("sqs").receive_message(
        QueueUrl=stack.name("ConsumerValidationDLQ"), MaxNumberOfMessages=10, VisibilityTimeout=0,
        MessageAttributeNames=["All"])["Messages"]
    [letter] = [m for m in letters if json.loads(m["Body"])["detail"]["orderId"] == order_id]
    # Dead-lettered by the function on its third receive, not by SQS's redrive after the fifth:
    # the reason names the call, the AWS code and the action IAM refused.
    attributes = {name: value["StringValue"] for name, value in letter["MessageAttributes"].items()}
    assert attributes["DeadLetterFunction"].endswith("ConsumerValidatorFunction"), attributes
    reason = attributes["DeadLetterReason"]
    assert reason.startswith("DynamoDB.GetItem failed: AccessDeniedException: "), reason
    assert "dynamodb:GetItem" in reason and reason.endswith("(still refused on receive 3)"), reason
    assert wait_for(stack, order_id, {"VALIDATED"}, timeout=1)["status"] == "ORDER_DETAILS_VALIDATED"


def test_an_explicit_deny_wins_and_order_api_degrades_to_an_unpriced_order(stack):
    with pytest.raises(ClientError) as denied:
        function_client(stack, "dynamodb", "OrderApiFunction").get_item(
            TableName=stack.name("ReplicasTable"), Key={"pk": {"S": "RESTAURANT#restaurant-1"}})
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    # Its allow on the orders table still holds; the replica being unreadable, orders go unpriced.
    answer = place(stack)
    assert answer.status_code == 202 and "total" not in answer.json()


def test_a_function_cannot_read_another_contexts_table(stack):
    validator = function_client(stack, "dynamodb", "RestaurantValidatorFunction")
    assert validator.get_item(TableName=stack.name("RestaurantsTable"),
                              Key={"restaurantId": {"S": "restaurant-1"}})["Item"]
    for table, key in (("ConsumersTable", "consumerId"), ("OrdersTable", "pk")):
        with pytest.raises(ClientError) as denied:
            validator.get_item(TableName=stack.name(table), Key={key: {"S": "x"}})
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "RestaurantValidatorFunction" in denied.value.response["Error"]["Message"]


def test_a_validator_may_publish_only_its_own_replies(stack):
    """events:source and events:detail-type in its role: EventBridge fails each entry it may
    not publish, and puts the others."""
    order_id = place(stack).json()["orderId"]
    wait_for(stack, order_id, {"ORDER_DETAILS_VALIDATED", "VALIDATED"})
    events = function_client(stack, "events", "ConsumerValidatorFunction")
    forged = [{"Source": source, "DetailType": kind, "EventBusName": stack.name("OrdersBus"),
               "Detail": json.dumps({"orderId": order_id})}
              for source, kind in [("restaurants", "OrderDetailsValidated"),
                                   ("consumers", "OrderDetailsValidated"),
                                   ("orders", "OrderRejected")]]
    answer = events.put_events(Entries=forged)
    assert answer["FailedEntryCount"] == 3
    assert [entry["ErrorCode"] for entry in answer["Entries"]] == [
        "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException",
        "NotAuthorizedForSourceException"]
