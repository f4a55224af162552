"""The port registry: every stack the project starts can run beside every other."""

from __future__ import annotations

from infra.devstack.launcher import PLAIN_MOTO_PORT, PORTS, SAM_LOCAL_API_PORT


def test_no_two_stacks_share_a_port():
    ports = [port for stack in PORTS.values() for port in (stack.api, stack.moto, stack.control)]
    ports += [SAM_LOCAL_API_PORT, PLAIN_MOTO_PORT]
    assert len(ports) == len(set(ports))
    assert PORTS["run"].api == 3000  # the README's and the docs' API address
