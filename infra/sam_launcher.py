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
import sys

import docker.models.containers


EMULATOR, RUNTIME_API = 0, 1


def port_range(half: int) -> tuple[int, int]:
    """The ports this SAM's container may listen on: the emulator in the lower half of
    `SAM_LOCAL_PORTS=first-last` (SAM's own 5000-9000 without it), its Runtime API in the upper.
    SAM picks a free port by binding and closing it, so SAMs run side by side (`make sam-local`)
    each need a block of their own."""
    first, last = (int(port) for port in os.environ.get("SAM_LOCAL_PORTS", "5000-9000").split("-"))
    middle = (first + last) // 2
    return (first, middle) if half == EMULATOR else (middle, last)


def free_port(half: int, network_interface: str = "127.0.0.1") -> int:
    from samcli.local.docker.utils import find_free_port

    start, end = port_range(half)
    return find_free_port(network_interface=network_interface, start=start, end=end)


def host_networked(create):
    def create_container(self, image, command=None, **kwargs):
        if (kwargs.get("labels") or {}).get("sam.cli.container.type") == "lambda":
            ports = kwargs.pop("ports")
            _interface, port = ports["8080"]
            kwargs["network_mode"] = "host"
            kwargs["entrypoint"] = [*kwargs["entrypoint"],
                                    "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                                    "--runtime-api-address", f"127.0.0.1:{free_port(RUNTIME_API)}"]
        return create(self, image, command, **kwargs)

    return create_container


def main() -> None:
    docker.models.containers.ContainerCollection.create = host_networked(
        docker.models.containers.ContainerCollection.create)
    # Everything stays on this machine: no check of PyPI for a newer SAM CLI.
    from samcli.lib.utils import version_checker

    version_checker.is_version_check_overdue = lambda *_: False
    import samcli.local.docker.container

    samcli.local.docker.container.find_free_port = (
        lambda network_interface, **_: free_port(EMULATOR, network_interface))
    from samcli.cli.main import cli

    sys.argv = ["sam", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
