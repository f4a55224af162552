"""Fixes to the pinned moto server, applied by `moto_patches`.

moto 5.2.5 makes TransactWriteItems atomic by deep-copying every table the transaction touches
and swapping the copy back in when it is cancelled. That costs time linear in the table's size
(2.2 s per transaction at 10,000 items) and, because the swap replaces the table object, stream
iterators taken before a cancelled transaction keep reading the discarded copy.

The replacement checks, then applies: every condition is evaluated against the current items
first, and nothing is written unless all of them hold. Only the items the transaction names are
copied, so its cost no longer grows with the table, and the table object is never replaced.

moto is also kinder than DynamoDB, which this module undoes:
- moto applies writes one at a time, so transactions never conflict. Here a transaction is in
  flight for `faults.FAULTS.transaction_hold_ms` and holds its items meanwhile: an overlapping
  transaction on one of them is cancelled with `TransactionConflict`, and a single write to one
  gets `TransactionConflictException`, as DynamoDB answers.
- moto's SQS queue is not safe under concurrent requests: `delete_message` rebuilds the queue's
  message list without the queue's lock while `send_message` appends under it, so a message sent
  during a delete can vanish, and one deleted during a receive's scan can come back. The chaos
  soak lost an accepted order's reply this way. Here deletes and receives hold the queue's lock
  (a receive waiting for messages releases it while it waits).
- moto ignores `ClientRequestToken`, so an SDK retry of a transaction that had committed (its
  answer lost) fails its conditions. DynamoDB answers such a retry with success for 10 minutes
  without writing again; so does this.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

from moto.dynamodb.exceptions import (
    ItemSizeTooLarge,
    ItemSizeToUpdateTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler
from moto.sqs.models import SQSBackend

from . import faults, limits

# Serialises writes, so that a transaction's check and its apply see the same items even while
# the threaded server handles other requests.
WRITE_LOCK = threading.RLock()

_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}

# moto's own single writes, which a transaction uses for its items (which it holds itself).
ORIGINAL = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item")}

# Items held by transactions in flight: (table, key) identities.
HELD: set[tuple[str, str]] = set()
# ClientRequestToken -> (the request's items, when it committed).
TOKENS: dict[str, tuple[str, float]] = {}
TOKEN_WINDOW_SECONDS = 600


class TransactionConflictException(DynamodbException):
    def __init__(self) -> None:
        super().__init__("com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                         "Transaction is ongoing for the item")


class IdempotentParameterMismatchException(DynamodbException):
    def __init__(self) -> None:
        super().__init__("com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                         "ClientRequestToken was used with a different request")


def _identity(table: str, key: dict[str, Any]) -> tuple[str, str]:
    return (str(table), json.dumps(key, sort_keys=True))


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    return _key_of_item(backend, op["TableName"], op["Item"])


def _key_of_item(backend: DynamoDBBackend, table_name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    table = backend.get_table(table_name)
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
    operations = []
    with WRITE_LOCK:
        seen: set[tuple[str, str]] = set()
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in _OPERATIONS:
                raise MockValidationException("Unsupported transaction operation")
            key = _key_of(self, op_type, op)
            identity = _identity(op["TableName"], key)
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            operations.append((op_type, op, key, identity))
        # A request over DynamoDB's size limits is invalid before anything else is looked at.
        limits.check_transaction_size([(op_type, op, self.get_item(op["TableName"], key))
                                       for op_type, op, key, _ in operations])
        # Another transaction in flight holds one of these items: cancelled, nothing written.
        conflicts = [identity in HELD for _, _, _, identity in operations]
        if any(conflicts):
            faults.FAULTS.count("dynamodb:TransactionConflict")
            raise TransactionCanceledException([
                ("TransactionConflict", "Transaction is ongoing for the item", None) if held
                else (None, None, None) for held in conflicts])
        HELD.update(seen)
    try:
        # In flight: DynamoDB takes a few milliseconds, during which the items stay held.
        time.sleep(faults.FAULTS.transaction_hold_ms / 1000)
        with WRITE_LOCK:
            _check_then_apply(self, operations)
    finally:
        with WRITE_LOCK:
            HELD.difference_update(seen)


def _check_then_apply(self: DynamoDBBackend, operations: list[tuple[str, dict[str, Any], dict[str, Any], Any]]) -> None:
    errors: list[tuple[Any, Any, Any]] = []
    # Check: every condition against the items as they are now; nothing is written.
    for _, op, key, _ in operations:
        holds, current = _condition_holds(self, op, key)
        if holds:
            errors.append((None, None, None))
        else:
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # Apply: conditions hold. Remember the named items and each stream's length, so that a
    # write refused half-way (an invalid update expression) is undone without a trace.
    saved = []
    for _, op, key, _ in operations:
        table = self.get_table(op["TableName"])
        hash_value, range_value = self.get_keys_value(table, key)
        item = table.get_item(hash_value, range_value)
        stream_length = len(table.stream_shard.items) if table.stream_shard else None
        saved.append((table, hash_value, range_value, copy.deepcopy(item), stream_length))
    applying = 0
    try:
        for applying, (op_type, op, key, _) in enumerate(operations):
            _apply(self, op_type, op, key)
    except Exception as refused:
        for table, hash_value, range_value, item, stream_length in reversed(saved):
            _restore(table, hash_value, range_value, item)
            if stream_length is not None and table.stream_shard is not None:
                del table.stream_shard.items[stream_length:]
        if isinstance(refused, (ItemSizeTooLarge, ItemSizeToUpdateTooLarge)):
            # An item the transaction would take past 400 KB cancels it (docs/conformance.md).
            raise TransactionCanceledException([
                ("ValidationError", refused.exception_msg, None) if i == applying else (None, None, None)
                for i in range(len(operations))]) from None
        raise


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    if op_type == "Put":
        ORIGINAL["put_item"](backend, op["TableName"], op["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)
    elif op_type == "Delete":
        ORIGINAL["delete_item"](backend, op["TableName"], key, expression_attribute_names=names,
                            expression_attribute_values=values)
    elif op_type == "Update":
        ORIGINAL["update_item"](backend, op["TableName"], key, update_expression=op["UpdateExpression"],
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


def _single_write(method, key_of):
    """A single write: refused while a transaction in flight holds its item, applied under the
    write lock otherwise."""

    def write(self, table_name, *args, **kwargs):
        with WRITE_LOCK:
            if _identity(table_name, key_of(self, table_name, args[0])) in HELD:
                faults.FAULTS.count("dynamodb:TransactionConflictException")
                raise TransactionConflictException()
            return method(self, table_name, *args, **kwargs)

    write.__name__ = method.__name__
    return write


def _with_client_request_token(handle):
    """A transaction repeated with its ClientRequestToken succeeds without writing again."""

    def transact(self: DynamoHandler) -> ActionResult:
        token = self.body.get("ClientRequestToken")
        if not token:
            return handle(self)
        request = json.dumps(self.body["TransactItems"], sort_keys=True)
        now = time.time()
        with WRITE_LOCK:
            # Tokens are kept in the order they were used: the expired ones are at the front.
            while TOKENS and now - next(iter(TOKENS.values()))[1] > TOKEN_WINDOW_SECONDS:
                del TOKENS[next(iter(TOKENS))]
            seen = TOKENS.get(token)
        if seen is not None:
            if seen[0] != request:
                raise IdempotentParameterMismatchException()
            faults.FAULTS.count("dynamodb:ClientRequestTokenReplayed")
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        result = handle(self)
        with WRITE_LOCK:
            TOKENS[token] = (request, now)
        return result

    transact.__name__ = handle.__name__
    return transact


def _under_queue_lock(method):
    def locked(self: SQSBackend, queue_name: str, *args, **kwargs):
        with self.get_queue(queue_name)._messages_lock:
            return method(self, queue_name, *args, **kwargs)

    locked.__name__ = method.__name__
    return locked


def apply() -> None:
    """Patches the in-process moto backend. Applied by `moto_patches`, once."""
    for name in ("delete_message", "receive_message"):
        setattr(SQSBackend, name, _under_queue_lock(getattr(SQSBackend, name)))
    DynamoDBBackend.transact_write_items = transact_write_items
    DynamoHandler.transact_write_items = _with_client_request_token(DynamoHandler.transact_write_items)
    DynamoDBBackend.put_item = _single_write(ORIGINAL["put_item"], _key_of_item)
    for name in ("update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _single_write(ORIGINAL[name], lambda _backend, _table, key: key))
