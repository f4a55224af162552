"""Errors in AWS's shapes, as the SDKs read them (docs/conformance.md, "Errors"): DynamoDB's
cancellation reasons and the item a failed condition found, PutEvents' per-entry refusals."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from infra.devstack import faults, moto_patches

moto_patches.apply()


@pytest.fixture
def table(new_table):
    dynamodb = new_table("errors")
    dynamodb.put_item(TableName="errors", Item={"pk": {"S": "taken"}, "v": {"N": "1"}})
    return dynamodb


def put(pk: str, **extra) -> dict:
    return {"Put": {"TableName": "errors", "Item": {"pk": {"S": pk}},
                    "ConditionExpression": "attribute_not_exists(pk)", **extra}}


def test_a_cancelled_transaction_names_each_items_reason_in_order_and_the_item_when_asked(table):
    with pytest.raises(ClientError) as cancelled:
        table.transact_write_items(TransactItems=[
            put("new"), put("taken", ReturnValuesOnConditionCheckFailure="ALL_OLD")])
    error = cancelled.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert error["Error"]["Message"] == ("Transaction cancelled, please refer cancellation reasons for "
                                         "specific reasons [None, ConditionalCheckFailed]")
    first, second = error["CancellationReasons"]
    assert first == {"Code": "None"}  # no message for an item without an error
    assert second["Code"] == "ConditionalCheckFailed"
    assert second["Message"] == "The conditional request failed"
    assert second["Item"] == {"pk": {"S": "taken"}, "v": {"N": "1"}}


def test_a_failed_condition_answers_the_item_it_found_when_asked(table):
    for asked in ("ALL_OLD", "NONE"):
        with pytest.raises(ClientError) as failed:
            table.put_item(TableName="errors", Item={"pk": {"S": "taken"}},
                           ConditionExpression="attribute_not_exists(pk)",
                           ReturnValuesOnConditionCheckFailure=asked)
        error = failed.value.response
        assert error["Error"]["Code"] == "ConditionalCheckFailedException"
        assert ("Item" in error) is (asked == "ALL_OLD")
        if asked == "ALL_OLD":
            assert error["Item"] == {"pk": {"S": "taken"}, "v": {"N": "1"}}


def test_put_events_refuses_entries_one_by_one_with_a_code_and_a_message(aws):
    events = aws("events")
    faults.FAULTS.configure({"putEvents": {"failureRate": 1.0, "source": "refused"}})
    try:
        answer = events.put_events(Entries=[
            {"Source": "kept", "DetailType": "d", "Detail": json.dumps({"a": 1})},
            {"Source": "refused", "DetailType": "d", "Detail": json.dumps({"a": 2})}])
    finally:
        faults.FAULTS.configure({"putEvents": {}})
    assert answer["FailedEntryCount"] == 1
    kept, refused = answer["Entries"]
    assert "EventId" in kept and "ErrorCode" not in kept
    # InternalFailure is among the codes EventBridge documents as worth a retry.
    assert refused["ErrorCode"] == "InternalFailure" and refused["ErrorMessage"]
    assert "EventId" not in refused
