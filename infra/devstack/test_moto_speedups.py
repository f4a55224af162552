"""The speed fixes devstack installs into moto answer exactly as moto's own code does."""

from __future__ import annotations

import json
import uuid

import pytest

from infra.devstack import moto_patches, moto_speedups

moto_patches.apply()


@pytest.mark.parametrize("event", [
    {"id": "1", "time": 1795696236.397, "detail-type": "OrderCreated", "source": "orders",
     "region": "us-east-1", "resources": [], "account": "123456789012", "ingestion-time": 1.0,
     "detail": {"orderId": "o", "lineItems": [{"menuItemId": "é", "quantity": 2}], "n": 1.5,
                "nested": {"empty": [], "none": None, "yes": True}}},
    {"id": "2", "time": 1, "detail-type": "x", "source": "s", "region": "eu-west-1",
     "resources": ["arn:a", "arn:b"], "ingestion-time": 2, "account": "123456789012", "detail": {}},
])
def test_an_event_without_a_transformer_is_delivered_as_moto_delivers_it_with_its_account(event):
    # moto's own template leaves `account` out; EventBridge delivers it (tests/corpus).
    assert moto_speedups.EventTemplateParser.parse(None, {}, event) == \
        {**moto_speedups.ORIGINAL_TEMPLATE_PARSE(None, {}, event), "account": event["account"]}


def test_a_transformer_still_goes_through_motos_parser():
    event = {"id": "1", "time": 1, "detail-type": "x", "source": "s", "region": "r", "resources": [],
             "ingestion-time": 1, "detail": {"orderId": "o"}}
    parsed = moto_speedups.EventTemplateParser.parse('{"id": "<order>"}', {"order": "$.detail.orderId"}, event)
    assert parsed == {"id": "o"}


def test_every_service_the_stack_uses_is_dispatched_to_its_own_backend(aws):
    dynamodb = aws("dynamodb")
    dynamodb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    for _ in range(2):  # the second time from the cache
        assert dynamodb.list_tables()["TableNames"] == ["t"]
        assert len(aws("dynamodbstreams").list_streams()["Streams"]) == 1
        assert aws("sqs").list_queues().get("QueueUrls", []) == []
        assert [b["Name"] for b in aws("events").list_event_buses()["EventBuses"]] == ["default"]
    dynamodb.delete_table(TableName="t")


def test_queue_attributes_read_one_by_one_equal_motos_own(aws):
    from moto.sqs import sqs_backends

    sqs = aws("sqs")
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="busy", Attributes={
        "VisibilityTimeout": "30", "MessageRetentionPeriod": "600", "SqsManagedSseEnabled": "true",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})["QueueUrl"]
    fifo = sqs.create_queue(QueueName="ordered.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", DelaySeconds=i % 2 * 60)
        sqs.send_message(QueueUrl=fifo, MessageBody=f"m{i}", MessageGroupId="g")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)
    queues = sqs_backends["123456789012"]["us-east-1"].queues
    for name in ("dead", "busy", "ordered.fifo"):
        queue = queues[name]
        assert dict(queue.attributes) == moto_speedups.ORIGINAL_QUEUE_ATTRIBUTES(queue), name
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    assert counts == {"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "2",
                      "ApproximateNumberOfMessagesDelayed": "2"}
    # A FIFO queue still de-duplicates by content (it reads ContentBasedDeduplication).
    sqs.send_message(QueueUrl=fifo, MessageBody="m0", MessageGroupId="g")
    assert sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "5"


def test_the_clock_and_the_visible_messages_agree_with_motos(aws):
    from moto.sqs import sqs_backends

    assert abs(moto_speedups._now() - moto_speedups.ORIGINAL_UNIX_TIME()) < 0.05
    assert abs(moto_speedups._now_millis() - moto_speedups.ORIGINAL_UNIX_TIME_MILLIS()) < 50
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="mixed")["QueueUrl"]
    for i in range(6):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", DelaySeconds=60 if i == 5 else 0)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)  # in flight
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0)
    queue = sqs_backends["123456789012"]["us-east-1"].queues["mixed"]
    assert queue.messages == moto_speedups.ORIGINAL_QUEUE_MESSAGES(queue)
    assert len(queue.messages) == 3  # 6 sent, 1 delayed, 2 in flight


def test_dynamodb_answers_are_the_json_motos_serializer_writes(aws, monkeypatch):
    from moto.core.responses import ActionResult

    compared, differences = [], []

    def both(self, context):
        fast = moto_speedups._fast_execute_result(self, context)
        slow = moto_speedups.ORIGINAL_EXECUTE_RESULT(self, context)
        compared.append(context.operation_model.name)
        if (fast[0], fast[1], json.loads(fast[2] or "{}")) != (slow[0], slow[1], json.loads(slow[2] or "{}")):
            differences.append((context.operation_model.name, fast, slow))
        return slow

    monkeypatch.setattr(ActionResult, "execute_result", both)
    dynamodb = aws("dynamodb")
    dynamodb.create_table(TableName="j", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    item = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "b": {"B": b"\x00\xff"}, "ss": {"SS": ["x", "y"]},
            "l": {"L": [{"M": {"x": {"BOOL": True}, "z": {"NULL": True}}}]}, "e": {"S": "é"}}
    dynamodb.put_item(TableName="j", Item=item)
    assert dynamodb.get_item(TableName="j", Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"] == item
    dynamodb.get_item(TableName="j", Key={"pk": {"S": "missing"}})
    dynamodb.put_item(TableName="j", Item={"pk": {"S": "a"}, "v": {"N": "2"}}, ReturnValues="ALL_OLD",
                      ReturnConsumedCapacity="TOTAL")
    dynamodb.update_item(TableName="j", Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
                         ExpressionAttributeValues={":v": {"N": "3"}}, ReturnValues="ALL_NEW")
    dynamodb.query(TableName="j", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}})
    dynamodb.scan(TableName="j", ReturnConsumedCapacity="TOTAL")
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": "j", "Item": {"pk": {"S": "t"}}}}])
    dynamodb.batch_get_item(RequestItems={"j": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "t"}}]}})
    dynamodb.delete_item(TableName="j", Key={"pk": {"S": "t"}}, ReturnValues="ALL_OLD")
    streams = aws("dynamodbstreams")
    arn = dynamodb.describe_table(TableName="j")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = streams.get_records(ShardIterator=iterator)
    assert [r["eventName"] for r in page["Records"]] == ["INSERT", "MODIFY", "MODIFY", "INSERT", "REMOVE"]
    assert streams.get_records(ShardIterator=page["NextShardIterator"])["Records"] == []
    dynamodb.delete_table(TableName="j")
    assert {"GetItem", "PutItem", "UpdateItem", "Query", "Scan", "TransactWriteItems", "BatchGetItem",
            "DeleteItem", "GetRecords", "GetShardIterator"} <= set(compared)
    assert differences == []


def test_a_response_class_lists_its_methods_once():
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    assert responses.method_names_from_class(DynamoHandler) == responses.method_names_from_class(DynamoHandler)
    assert "get_item" in responses.method_names_from_class(DynamoHandler)
    assert responses.method_names_from_class.cache_info().hits >= 1


def test_dynamodb_requests_are_read_as_the_shape_parser_reads_them(aws, monkeypatch):
    from moto.core.responses import BaseResponse

    compared, differences = [], []

    def both(self, request):
        moto_speedups._fast_parse_parameters(self, request)
        fast = getattr(self, "params", None)
        moto_speedups.ORIGINAL_PARSE_PARAMETERS(self, request)
        compared.append(self._get_action())
        if fast != self.params:
            differences.append((self._get_action(), fast, self.params))

    monkeypatch.setattr(BaseResponse, "parse_parameters", both)
    dynamodb = aws("dynamodb")
    dynamodb.create_table(TableName="p", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    item = {"pk": {"S": "a"}, "n": {"N": "1.5"}, "ss": {"SS": ["x", "y"]}, "e": {"S": "é"},
            "l": {"L": [{"M": {"x": {"BOOL": True}, "z": {"NULL": True}}}]}}
    dynamodb.put_item(TableName="p", Item=item, ConditionExpression="attribute_not_exists(pk)",
                      ReturnValuesOnConditionCheckFailure="ALL_OLD")
    dynamodb.put_item(TableName="p", Item={"pk": {"S": "b"}, "bin": {"B": b"\x00\xff"}})
    dynamodb.put_item(TableName="p", Item={"pk": {"S": "c"}, "bs": {"BS": [b"\x01"]}})
    assert dynamodb.get_item(TableName="p", Key={"pk": {"S": "b"}})["Item"]["bin"] == {"B": b"\x00\xff"}
    dynamodb.get_item(TableName="p", Key={"pk": {"S": "a"}}, ConsistentRead=True, ProjectionExpression="#n",
                      ExpressionAttributeNames={"#n": "n"})
    dynamodb.update_item(TableName="p", Key={"pk": {"S": "a"}}, UpdateExpression="SET v = :v",
                         ExpressionAttributeValues={":v": {"N": "3"}}, ReturnValues="ALL_NEW")
    dynamodb.query(TableName="p", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}},
                   Limit=5)
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "p", "Item": {"pk": {"S": "t"}}}},
        {"ConditionCheck": {"TableName": "p", "Key": {"pk": {"S": "a"}}, "ConditionExpression": "v = :v",
                            "ExpressionAttributeValues": {":v": {"N": "3"}}}}], ClientRequestToken=str(uuid.uuid4()))
    dynamodb.delete_table(TableName="p")
    assert {"PutItem", "GetItem", "UpdateItem", "Query", "TransactWriteItems"} <= set(compared)
    assert differences == []
