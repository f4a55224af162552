"""Properties of the local stack itself that the rest of the suite relies on."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def test_a_cancelled_transaction_writes_nothing_on_the_local_stack(stack):
    dynamodb = stack.client("dynamodb")
    orders, outbox = stack.name("OrdersTable"), stack.name("OutboxTable")
    taken, fresh, event = f"ORDER#{uuid.uuid4()}", f"ORDER#{uuid.uuid4()}", str(uuid.uuid4())
    dynamodb.put_item(TableName=orders, Item={"pk": {"S": taken}})

    def create(table, key, value):
        return {"Put": {"TableName": table, "Item": {key: {"S": value}},
                        "ConditionExpression": "attribute_not_exists(#k)",
                        "ExpressionAttributeNames": {"#k": key}}}

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[
            create(orders, "pk", fresh), create(outbox, "eventId", event), create(orders, "pk", taken)])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert "Item" not in dynamodb.get_item(TableName=orders, Key={"pk": {"S": fresh}})
    assert "Item" not in dynamodb.get_item(TableName=outbox, Key={"eventId": {"S": event}})
