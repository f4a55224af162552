"""The emulator's fault settings: each checked before any is taken."""

from __future__ import annotations

import pytest

from .faults import Faults


@pytest.mark.parametrize("settings", [
    {"errors": {"dynamodb": {"throttle": 5}}},
    {"putEvents": {"failureRate": -0.1}},
    {"eventDuplicates": float("nan")},
    {"transactionHoldMs": -1},
    {"eventDuplicates": 0.5, "putEvents": {"failureRate": 2}},
])
def test_a_setting_out_of_range_is_refused_and_changes_nothing(settings):
    faults = Faults()
    before = faults.describe()
    with pytest.raises(ValueError):
        faults.configure(settings)
    assert faults.describe() == before


def test_shares_and_the_hold_are_taken_as_given():
    faults = Faults()
    faults.configure({"errors": {"dynamodb": {"throttle": 0.25}}, "putEvents": {"failureRate": 1, "source": "orders"},
                      "eventDuplicates": 0, "transactionHoldMs": 50})
    described = faults.describe()
    assert described["errors"] == {"dynamodb": {"throttle": 0.25}}
    assert described["putEvents"]["failureRate"] == 1 and described["putEvents"]["source"] == "orders"
    assert described["transactionHoldMs"] == 50
