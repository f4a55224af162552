"""devstack's patches to moto: applied in one order, once, and only to the moto they were written
against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import EventsBackend
from moto.sqs.models import SQSBackend

from infra.devstack import moto_patches

REQUIREMENTS = Path(__file__).parents[1] / "requirements.txt"


def test_the_patches_are_applied_once_however_often_apply_is_called():
    assert moto_patches.apply() == ("fixes", "speedups", "faults", "limits")
    methods = (EventsBackend.put_events, SQSBackend.send_message, SQSBackend.delete_message,
               DynamoDBBackend.put_item, DynamoDBBackend.transact_write_items)
    assert moto_patches.apply() == ("fixes", "speedups", "faults", "limits")
    assert (EventsBackend.put_events, SQSBackend.send_message, SQSBackend.delete_message,
            DynamoDBBackend.put_item, DynamoDBBackend.transact_write_items) == methods


def test_another_moto_is_refused_by_name():
    moto_patches.check_version(moto_patches.MOTO_VERSION)
    with pytest.raises(moto_patches.MotoVersionError, match=r"written against moto 5\.2\.5, and moto 5\.3\.0"):
        moto_patches.check_version("5.3.0")


def test_the_version_the_patches_know_is_the_one_pinned():
    pinned = re.search(r"^moto==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert pinned and pinned.group(1) == moto_patches.MOTO_VERSION
