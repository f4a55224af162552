"""`make sam-local`'s plan: which samples run side by side."""

from __future__ import annotations

from .sam_launcher import port_block
from .sam_local import CHECKS, IN_ORDER, lanes


def test_every_sample_runs_once_and_the_ordered_ones_in_their_order():
    planned = [sample for lane in lanes() for sample in lane]
    assert sorted(planned) == sorted(sample for sample, _ in CHECKS)
    for ordered in IN_ORDER:
        assert ordered in lanes()


def test_a_port_block_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("SAM_LOCAL_PORTS", raising=False)
    assert port_block() is None
    monkeypatch.setenv("SAM_LOCAL_PORTS", "6000-6999")
    assert port_block() == (6000, 6999)
