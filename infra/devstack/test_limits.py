"""AWS's size limits as devstack's moto enforces them (docs/conformance.md, "Limits")."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from infra.devstack import limits, moto_patches

moto_patches.apply()

KB = 1024


def test_sizes_are_counted_as_aws_counts_them():
    assert limits.put_events_entry_size(
        {"Source": "orders", "DetailType": "OrderCreated", "Detail": '{"a":"é"}', "Time": 0,
         "Resources": ["arn:x"]}) == 14 + 6 + 12 + 10 + 5
    assert limits.put_events_entry_size({"Source": "s", "DetailType": "d", "Detail": "{}"}) == 4
    assert limits.sqs_message_size("é", {"kind": {"DataType": "String", "StringValue": "ab"}}) == 2 + 4 + 6 + 2
    # DynamoDB: a number is one byte per two significant digits, plus one.
    assert [limits.number_size(n) for n in ("0", "7", "12345", "0.00100", "-1.5e10", "100")] == [1, 2, 4, 2, 2, 2]
    item = {"pk": {"S": "ab"}, "n": {"N": "123"}, "ok": {"BOOL": True},
            "l": {"L": [{"S": "x"}, {"NULL": True}]}, "m": {"M": {"k": {"S": "vv"}}}}
    # pk 2+2, n 1+3, ok 2+1, l 1+(3+1+1+1+1), m 1+(3+1+1+2)
    assert limits.attributes_size(item) == 4 + 4 + 3 + 8 + 8


@pytest.fixture(scope="module")
def events(aws):
    client = aws("events")
    return client


def entry(detail_bytes: int) -> dict:
    # 14 (Time) + 1 + 1 + the detail: {"x":"xxx..."}
    detail = json.dumps({"x": "x" * (detail_bytes - 8)}, separators=(",", ":"))
    return {"Source": "s", "DetailType": "d", "Detail": detail,
            "Time": "2026-12-01T00:00:00Z"}


def test_put_events_over_1_mb_together_is_refused_whole(events):
    under = [entry(99_000) for _ in range(10)]
    assert events.put_events(Entries=under)["FailedEntryCount"] == 0
    over = [entry(99_999) for _ in range(10)]  # 10 x (16 + 99,999) > 1,000,000
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=over)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "over the limit" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as eleven:
        events.put_events(Entries=[entry(10)] * 11)
    assert eleven.value.response["Error"]["Code"] == "ValidationException"


def test_an_sqs_message_counts_bytes_and_attributes_against_the_queue_maximum(aws):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="limits")["QueueUrl"]
    maximum = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
                  ["Attributes"]["MaximumMessageSize"])
    assert maximum == 1_048_576  # the default since 2025-08-04
    sqs.send_message(QueueUrl=url, MessageBody="x" * maximum)
    # Fewer characters than the limit, more bytes.
    for body, attributes in (("é" * (maximum // 2 + 1), {}),
                             ("x" * (maximum - 10), {"kind": {"DataType": "String", "StringValue": "abcdef"}})):
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert f"shorter than {maximum} bytes" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as batch:
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": "é" * 200_000} for i in range(3)])
    assert batch.value.response["Error"]["Code"] == "AWS.SimpleQueueService.BatchRequestTooLong"
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def table(new_table):
    return new_table("limits")


def item(pk: str, total: int) -> dict:
    """An item of exactly `total` bytes as DynamoDB counts them: pk and one string `v`."""
    return {"pk": {"S": pk}, "v": {"S": "x" * (total - 2 - len(pk) - 1)}}


def test_an_item_over_400_kb_is_refused_and_one_at_it_is_stored(table):
    table.put_item(TableName="limits", Item=item("at", 400 * KB))
    with pytest.raises(ClientError) as refused:
        table.put_item(TableName="limits", Item=item("over", 400 * KB + 1))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == "Item size has exceeded the maximum allowed size"
    with pytest.raises(ClientError) as grown:
        table.update_item(TableName="limits", Key={"pk": {"S": "at"}},
                          UpdateExpression="SET w = :w", ExpressionAttributeValues={":w": {"S": "y"}})
    assert grown.value.response["Error"]["Code"] == "ValidationException"
    assert "Item size to update has exceeded" in grown.value.response["Error"]["Message"]


def test_a_transaction_taking_an_item_past_400_kb_is_cancelled_with_a_validation_error(table):
    table.put_item(TableName="limits", Item=item("big", 400 * KB - 5))
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=[
            {"Put": {"TableName": "limits", "Item": {"pk": {"S": "small"}}}},
            {"Update": {"TableName": "limits", "Key": {"pk": {"S": "big"}},
                        "UpdateExpression": "SET w = :w",
                        "ExpressionAttributeValues": {":w": {"S": "0123456789"}}}}])
    error = refused.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == ["None", "ValidationError"]
    assert "[None, ValidationError]" in error["Error"]["Message"]
    assert "Item" not in table.get_item(TableName="limits", Key={"pk": {"S": "small"}})


def test_a_transaction_of_more_than_100_actions_is_refused(table):
    puts = [{"Put": {"TableName": "limits", "Item": {"pk": {"S": f"k{i}"}}}} for i in range(101)]
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=puts)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 100" in refused.value.response["Error"]["Message"]
    assert count(table) == 0


def test_a_put_over_400_kb_in_a_transaction_cancels_it_with_the_put_message(table):
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=[
            {"Put": {"TableName": "limits", "Item": item("huge", 400 * KB + 1)}}])
    error = refused.value.response
    assert [r["Code"] for r in error["CancellationReasons"]] == ["ValidationError"]
    assert error["CancellationReasons"][0]["Message"] == "Item size has exceeded the maximum allowed size"


def test_an_event_delivered_over_its_queues_maximum_fails_the_delivery_not_the_put(aws):
    sqs, events = aws("sqs"), aws("events")
    url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="small", EventPattern=json.dumps({"source": ["big"]}))
    events.put_targets(Rule="small", Targets=[{"Id": "q", "Arn": arn}])
    answer = events.put_events(Entries=[entry(2000) | {"Source": "big"}])
    assert answer["FailedEntryCount"] == 0
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None
    events.remove_targets(Rule="small", Ids=["q"])
    events.delete_rule(Name="small")
    sqs.delete_queue(QueueUrl=url)


def test_a_transaction_over_4_mb_together_is_refused(table):
    puts = [{"Put": {"TableName": "limits", "Item": item(f"p{i}", 400 * KB)}} for i in range(11)]
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=puts)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert count(table) == 0
    table.transact_write_items(TransactItems=puts[:10])  # 4,000 KB: within 4 MB
    assert count(table) == 10


def count(client) -> int:
    pages = client.get_paginator("scan").paginate(TableName="limits", Select="COUNT")
    return sum(page["Count"] for page in pages)
