"""`make sam-local`'s plan: which samples run side by side."""

from __future__ import annotations

from .sam_launcher import EMULATOR, RUNTIME_API, port_range
from .sam_local import CHECKS, IN_ORDER, lanes


def test_every_sample_runs_once_and_the_ordered_ones_in_their_order():
    planned = [sample for lane in lanes() for sample in lane]
    assert sorted(planned) == sorted(sample for sample, _ in CHECKS)
    for ordered in IN_ORDER:
        assert ordered in lanes()


def test_a_port_block_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("SAM_LOCAL_PORTS", raising=False)
    assert (port_range(EMULATOR), port_range(RUNTIME_API)) == ((5000, 7000), (7000, 9000))
    monkeypatch.setenv("SAM_LOCAL_PORTS", "6000-6999")
    assert (port_range(EMULATOR), port_range(RUNTIME_API)) == ((6000, 6499), (6499, 6999))
