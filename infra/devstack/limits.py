"""AWS's size limits, which moto leaves out or counts otherwise, refused as AWS refuses them.

Each limit, how AWS counts it and its source are rows of docs/conformance.md ("Limits"):
- EventBridge `PutEvents`: the entries together under 1 MB, an entry counted as 14 bytes for
  `Time` plus the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each of `Resources`;
  over it, `ValidationException`. (moto checks the ten entries only.) "1 MB" is not given in
  bytes; 1,000,000 is the stricter reading.
- SQS: a message's body and every attribute's name, type and value in UTF-8 bytes, at most the
  queue's `MaximumMessageSize` (1 MiB by default since August 2025); a batch's messages together
  at most 1 MiB. (moto counts the body's characters and no attributes.)
- DynamoDB: an item at most 400 KB (409,600 bytes) counted as DynamoDB counts it: names and
  values in UTF-8 bytes, a number one byte per two significant digits plus one, a list or map
  three bytes plus one per element. (moto stops at 405,000 of its own count.) In a transaction an
  item grown past the limit cancels it with reason `ValidationError`, and the items together at
  most 4 MB (`ValidationException`).
- A rule's delivery to a queue over the queue's maximum fails after `PutEvents` has answered;
  devstack counts it (`eventDelivery:tooLarge`) where AWS would retry it and then give it to the
  target's dead-letter queue.
"""

from __future__ import annotations

import base64
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from moto.dynamodb.exceptions import ItemSizeTooLarge, MockValidationException
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.models import EventsBackend, Rule
from moto.sqs.exceptions import BatchRequestTooLong, InvalidParameterValue
from moto.sqs.models import SQSBackend

from . import faults

log = logging.getLogger("devstack.limits")

PUT_EVENTS_MAX_BYTES = 1_000_000
SQS_BATCH_MAX_BYTES = 1_048_576
ITEM_MAX_BYTES = 400 * 1024
TRANSACTION_MAX_BYTES = 4 * 1024 * 1024


def utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def put_events_entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it against the call's limit."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += utf8(entry[name])
    return size + sum(utf8(resource) for resource in entry.get("Resources") or [])


def sqs_message_size(body: str, attributes: dict[str, Any] | None) -> int:
    """A message's size as SQS counts it: the body and each attribute's name, type and value."""
    size = utf8(body)
    for name, attribute in (attributes or {}).items():
        size += utf8(name) + utf8(attribute.get("data_type") or attribute.get("DataType") or "")
        for key in ("string_value", "StringValue"):
            if attribute.get(key) is not None:
                size += utf8(attribute[key])
        for key in ("binary_value", "BinaryValue"):
            value = attribute.get(key)
            if value is not None:
                size += len(value) if isinstance(value, bytes) else len(base64.b64decode(value))
    return size


def number_size(text: str) -> int:
    """One byte per two significant digits, plus one; leading and trailing zeros do not count."""
    digits: tuple[int | str, ...]
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        # Not a number DynamoDB would take: sized by its digit characters.
        digits = tuple(c for c in text if c.isdigit())
    significant = len(digits) if any(digits) else 0
    return (significant + 1) // 2 + 1


def value_size(value: DynamoType) -> int:
    """The size of one attribute value as DynamoDB counts it (its name not included)."""
    kind = value.type
    if kind == "N":
        return number_size(str(value.value))
    if kind in ("SS", "NS", "BS"):
        return sum(value_size(DynamoType({kind[0]: member})) for member in value.value)
    if kind == "L":
        return 3 + sum(1 + value_size(member if isinstance(member, DynamoType) else DynamoType(member))
                       for member in value.value)
    if kind == "M":
        return 3 + sum(1 + utf8(name) + value_size(DynamoType(member) if not isinstance(member, DynamoType) else member)
                       for name, member in value.value.items())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        raw = value.value
        return len(raw) if isinstance(raw, bytes) else len(base64.b64decode(raw))
    return utf8(value.value)


def attributes_size(attributes: dict[str, Any]) -> int:
    return sum(utf8(name) + value_size(v if isinstance(v, DynamoType) else DynamoType(v))
               for name, v in attributes.items())


def set_within_item_limit(self: dict[str, Any], key: str, value: Any) -> None:
    """Sets an item's attribute, refused past 400 KB as DynamoDB counts them (replaces
    moto's `LimitedSizeDict.__setitem__`)."""
    others = sum(utf8(k) + value_size(v) for k, v in self.items() if k != key and isinstance(v, DynamoType))
    mine = utf8(key) + (value_size(value) if isinstance(value, DynamoType) else utf8(value))
    if others + mine > ITEM_MAX_BYTES:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)


def transaction_size(operations: list[tuple[str, dict[str, Any], Any]]) -> int:
    """The items a transaction writes or checks, together: what it puts, and the stored items
    it updates, deletes or checks (`operations`: the operation, its request, the stored item).
    An update counts the item as stored, not as it would become."""
    size = 0
    for op_type, op, current in operations:
        if op_type == "Put":
            size += attributes_size(op["Item"])
        elif current is not None:
            size += attributes_size(current.attrs)
    return size


def check_transaction_size(operations: list[tuple[str, dict[str, Any], Any]]) -> None:
    if transaction_size(operations) > TRANSACTION_MAX_BYTES:
        raise MockValidationException(
            "Transaction request cannot be larger than 4 MB")


def apply() -> None:
    """Wraps moto's PutEvents, SendMessage and SendMessageBatch with AWS's size limits and
    replaces its item size rule. Applied by `moto_patches`, after the faults."""
    original_put = EventsBackend.put_events

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        total = sum(put_events_entry_size(event) for event in events)
        if len(events) <= 10 and total >= PUT_EVENTS_MAX_BYTES:
            raise EventsValidationException("Total size of the entries in the request is over the limit.")
        return original_put(self, events)

    EventsBackend.put_events = put_events

    original_send = SQSBackend.send_message

    def send_message(self: SQSBackend, queue_name: str, message_body: str,
                     message_attributes: dict[str, Any] | None = None, *args, **kwargs):
        limit = int(self.get_queue(queue_name).maximum_message_size)  # type: ignore[attr-defined]
        if sqs_message_size(message_body, message_attributes) > limit:
            raise InvalidParameterValue(
                f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.")
        return original_send(self, queue_name, message_body, message_attributes, *args, **kwargs)

    SQSBackend.send_message = send_message

    original_batch = SQSBackend.send_message_batch

    def send_message_batch(self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]):
        total = sum(sqs_message_size(e["MessageBody"], e.get("MessageAttributes")) for e in entries.values())
        if total > SQS_BATCH_MAX_BYTES:
            raise BatchRequestTooLong(total)
        return original_batch(self, queue_name, entries)

    SQSBackend.send_message_batch = send_message_batch

    # A rule's delivery over its queue's maximum fails after PutEvents has answered, not in it.
    original_delivery = Rule._send_to_sqs_queue

    def send_to_sqs_queue(self: Rule, resource_id: str, event: dict[str, Any], group_id: str | None = None):
        try:
            original_delivery(self, resource_id, event, group_id)
        except InvalidParameterValue as refused:
            faults.FAULTS.count("eventDelivery:tooLarge")
            log.warning("rule %s: event %s not delivered to %s: %s", self.name, event.get("id"),
                        resource_id, refused)

    Rule._send_to_sqs_queue = send_to_sqs_queue

    dynamo_type.LimitedSizeDict.__setitem__ = set_within_item_limit
    Item.size = lambda self: attributes_size(self.attrs)
