"""Fixes to the pinned moto server, applied where devstack launches it.

moto 5.2.5 makes TransactWriteItems atomic by deep-copying every table the transaction touches
and swapping the copy back in when it is cancelled. That costs time linear in the table's size
(2.2 s per transaction at 10,000 items) and, because the swap replaces the table object, stream
iterators taken before a cancelled transaction keep reading the discarded copy.

The replacement checks, then applies: every condition is evaluated against the current items
first, and nothing is written unless all of them hold. Only the items the transaction names are
copied, so its cost no longer grows with the table, and the table object is never replaced.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType

# Serialises writes, so that a transaction's check and its apply see the same items even while
# the threaded server handles other requests.
WRITE_LOCK = threading.RLock()

_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _condition_holds(backend: DynamoDBBackend, op: dict[str, Any], key: dict[str, Any]):
    """Returns (holds, current item) for the operation's condition."""
    current = backend.get_item(op["TableName"], key)
    expression = op.get("ConditionExpression")
    if expression is None:
        return True, current
    check = get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    return check.expr(current), current


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with WRITE_LOCK:
        operations = []
        seen: set[tuple[str, str]] = set()
        errors: list[tuple[Any, Any, Any]] = []
        # Check: every condition against the items as they are now; nothing is written.
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in _OPERATIONS:
                raise MockValidationException("Unsupported transaction operation")
            key = _key_of(self, op_type, op)
            identity = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            holds, current = _condition_holds(self, op, key)
            if holds:
                errors.append((None, None, None))
            else:
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
            operations.append((op_type, op, key))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)

        # Apply: conditions hold. Remember the named items and each stream's length, so that a
        # write refused half-way (an invalid update expression) is undone without a trace.
        saved = []
        for _, op, key in operations:
            table = self.get_table(op["TableName"])
            hash_value, range_value = self.get_keys_value(table, key)
            item = table.get_item(hash_value, range_value)
            stream_length = len(table.stream_shard.items) if table.stream_shard else None
            saved.append((table, hash_value, range_value, copy.deepcopy(item), stream_length))
        try:
            for op_type, op, key in operations:
                _apply(self, op_type, op, key)
        except Exception:
            for table, hash_value, range_value, item, stream_length in reversed(saved):
                _restore(table, hash_value, range_value, item)
                if stream_length is not None:
                    del table.stream_shard.items[stream_length:]
            raise


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key, expression_attribute_names=names,
                            expression_attribute_values=values)
    elif op_type == "Update":
        backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                            expression_attribute_names=names, expression_attribute_values=values)


def _restore(table: Any, hash_value: DynamoType, range_value: DynamoType | None, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item


def _locked(method):
    def write(self, *args, **kwargs):
        with WRITE_LOCK:
            return method(self, *args, **kwargs)

    write.__name__ = method.__name__
    return write


def apply() -> None:
    """Patches the in-process moto backend. Call before the server starts."""
    DynamoDBBackend.transact_write_items = transact_write_items
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
