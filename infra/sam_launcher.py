"""SAM CLI, run as `sam`, with one change for a Docker daemon that has no bridge network: SAM's
Lambda containers get host networking, and the Runtime Interface Emulator listens on 127.0.0.1
at the port SAM chose for it (and its Runtime API on a free one, not the default 9001), both in
the block `SAM_LOCAL_PORTS` names when it is set.

`python -m infra.sam_launcher local invoke FUNCTION -e EVENT ...` (run with .venv-sam's Python;
the Makefile runs every SAM command this way). It also keeps SAM from checking PyPI for a newer
version: nothing leaves the machine.
It depends on SAM's internals (the container's `ports` and `labels`): SAM CLI is pinned in
infra/requirements-sam.txt, and `make sam-local` fails loudly if they change."""

from __future__ import annotations

import os
import socket
import sys

import docker.models.containers


def port_block() -> tuple[int, int] | None:
    """`SAM_LOCAL_PORTS=first-last`: the ports this SAM's container may listen on, the emulator
    in the lower half, its Runtime API in the upper. SAM picks a free port by binding and closing
    it, so two SAMs run side by side (`make sam-local`) could otherwise pick the same one."""
    block = os.environ.get("SAM_LOCAL_PORTS")
    if not block:
        return None
    first, last = (int(port) for port in block.split("-"))
    return first, last


def free_port(start: int | None = None, end: int | None = None) -> int:
    if start is not None and end is not None:
        return samcli_free_port(network_interface="127.0.0.1", start=start, end=end)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samcli_free_port(network_interface: str, start: int, end: int) -> int:
    from samcli.local.docker.utils import find_free_port

    return find_free_port(network_interface=network_interface, start=start, end=end)


def emulator_port(network_interface: str, start: int = 5000, end: int = 9000) -> int:
    """SAM's choice of the emulator's port, within this process's block when it has one."""
    block = port_block()
    if block is not None:
        start, end = block[0], (block[0] + block[1]) // 2
    return samcli_free_port(network_interface, start, end)


def runtime_api_port() -> int:
    block = port_block()
    if block is None:
        return free_port()
    return free_port((block[0] + block[1]) // 2, block[1])


def host_networked(create):
    def create_container(self, image, command=None, **kwargs):
        if (kwargs.get("labels") or {}).get("sam.cli.container.type") == "lambda":
            ports = kwargs.pop("ports")
            _interface, port = ports["8080"]
            kwargs["network_mode"] = "host"
            kwargs["entrypoint"] = [*kwargs["entrypoint"],
                                    "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                                    "--runtime-api-address", f"127.0.0.1:{runtime_api_port()}"]
        return create(self, image, command, **kwargs)

    return create_container


def main() -> None:
    docker.models.containers.ContainerCollection.create = host_networked(
        docker.models.containers.ContainerCollection.create)
    # Everything stays on this machine: no check of PyPI for a newer SAM CLI.
    from samcli.lib.utils import version_checker

    version_checker.is_version_check_overdue = lambda *_: False
    import samcli.local.docker.container

    samcli.local.docker.container.find_free_port = emulator_port
    from samcli.cli.main import cli

    sys.argv = ["sam", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
