"""The check-then-apply transaction that devstack installs into moto."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from infra.devstack import moto_patches

moto_patches.apply()


@pytest.fixture
def dynamodb(aws):
    dynamodb = aws("dynamodb")
    for name in ("a", "b"):
        dynamodb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    yield dynamodb
    for name in ("a", "b"):
        dynamodb.delete_table(TableName=name)


def put(table, pk, **extra):
    return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, **extra},
                    "ConditionExpression": "attribute_not_exists(pk)"}}


def keys(client, table):
    return sorted(i["pk"]["S"] for i in client.scan(TableName=table)["Items"])


def stream_records(aws, dynamodb, table):
    streams = aws("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return streams, iterator


def test_a_cancelled_transaction_writes_nothing(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("a", "taken")])
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[put("b", "new"), put("a", "taken")])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert keys(dynamodb, "a") == ["taken"]
    assert keys(dynamodb, "b") == []


def test_a_successful_transaction_writes_every_item(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("a", "1"), put("b", "1"), put("b", "2")])
    assert keys(dynamodb, "a") == ["1"]
    assert keys(dynamodb, "b") == ["1", "2"]


def test_a_write_refused_half_way_is_undone_without_a_stream_record(aws, dynamodb):
    # The update's expression is only found invalid while applying, after the put went in.
    bad_update = {"Update": {"TableName": "b", "Key": {"pk": {"S": "x"}},
                             "UpdateExpression": "SET #n = :missing",
                             "ExpressionAttributeNames": {"#n": "n"}}}
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[put("a", "first"), bad_update])
    assert keys(dynamodb, "a") == []
    assert keys(dynamodb, "b") == []
    streams, iterator = stream_records(aws, dynamodb, "a")
    assert streams.get_records(ShardIterator=iterator)["Records"] == []


def test_stream_iterators_survive_a_cancelled_transaction(aws, dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("a", "1")])
    streams, iterator = stream_records(aws, dynamodb, "a")
    first = streams.get_records(ShardIterator=iterator)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first["Records"]] == ["1"]
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[put("a", "2"), put("a", "1")])
    dynamodb.transact_write_items(TransactItems=[put("a", "3")])
    later = streams.get_records(ShardIterator=first["NextShardIterator"])
    # No phantom record of the cancelled "2", and "3" is not skipped.
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in later["Records"]] == ["3"]


@pytest.fixture
def slow_transactions():
    from infra.devstack import faults
    before = faults.FAULTS.transaction_hold_ms
    faults.FAULTS.configure({"transactionHoldMs": 300})
    yield
    faults.FAULTS.configure({"transactionHoldMs": before})


def in_background(call):
    import threading
    outcome = {}

    def run():
        try:
            outcome["result"] = call()
        except ClientError as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_overlapping_transactions_on_one_item_conflict_and_the_loser_writes_nothing(dynamodb, slow_transactions):
    import time
    thread, first = in_background(lambda: dynamodb.transact_write_items(TransactItems=[put("a", "x")]))
    time.sleep(0.1)  # the first is in flight and holds a/x
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[put("b", "y"), put("a", "x")])
    thread.join()
    assert "error" not in first
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "TransactionConflict"]
    assert keys(dynamodb, "a") == ["x"] and keys(dynamodb, "b") == []


def test_a_single_write_to_an_item_held_by_a_transaction_is_refused(dynamodb, slow_transactions):
    import time
    thread, _ = in_background(lambda: dynamodb.transact_write_items(TransactItems=[put("a", "x")]))
    time.sleep(0.1)
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(TableName="a", Item={"pk": {"S": "x"}, "v": {"N": "2"}})
    # An item the transaction does not hold is written at once.
    dynamodb.put_item(TableName="a", Item={"pk": {"S": "other"}})
    thread.join()
    assert refused.value.response["Error"]["Code"] == "TransactionConflictException"
    assert keys(dynamodb, "a") == ["other", "x"]


def test_a_transaction_repeated_with_its_token_succeeds_without_writing_again(dynamodb):
    items = [put("a", "once")]
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken="token-1")
    # Its condition would fail now: the repeat is answered from the token instead.
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken="token-1")
    assert keys(dynamodb, "a") == ["once"]
    with pytest.raises(ClientError) as mismatch:
        dynamodb.transact_write_items(TransactItems=[put("a", "other")], ClientRequestToken="token-1")
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert keys(dynamodb, "a") == ["once"]


def test_messages_sent_while_others_are_received_and_deleted_are_neither_lost_nor_revived():
    import threading

    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["eu-west-1"]
    backend.create_queue("busy")
    senders, per_sender = 4, 300
    deleted: set[str] = set()
    sending = threading.Event()
    sending.set()

    def send():
        for _ in range(per_sender):
            backend.send_message("busy", "m")

    def consume():
        while sending.is_set() or backend.get_queue("busy").messages:
            for message in backend.receive_message("busy", 10, 0, 30, message_attribute_names=[]):
                backend.delete_message("busy", message.receipt_handle)
                deleted.add(message.id)

    threads = [threading.Thread(target=send) for _ in range(senders)]
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for thread in threads + consumers:
        thread.start()
    for thread in threads:
        thread.join()
    sending.clear()
    for thread in consumers:
        thread.join()
    assert len(deleted) == senders * per_sender
    assert backend.get_queue("busy")._messages == []
