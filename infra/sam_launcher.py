"""SAM CLI, run as `sam`, with one change for a Docker daemon that has no bridge network: SAM's
Lambda containers get host networking, and the Runtime Interface Emulator listens on 127.0.0.1
at the port SAM chose for it (and its Runtime API on a free one, not the default 9001).

`python -m infra.sam_launcher local invoke FUNCTION -e EVENT ...` (run with .venv-sam's Python;
the Makefile runs every SAM command this way). It also keeps SAM from checking PyPI for a newer
version: nothing leaves the machine.
It depends on SAM's internals (the container's `ports` and `labels`): SAM CLI is pinned in
infra/requirements-sam.txt, and `make sam-local` fails loudly if they change."""

from __future__ import annotations

import socket
import sys

import docker.models.containers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def host_networked(create):
    def create_container(self, image, command=None, **kwargs):
        if (kwargs.get("labels") or {}).get("sam.cli.container.type") == "lambda":
            ports = kwargs.pop("ports")
            _interface, port = ports["8080"]
            kwargs["network_mode"] = "host"
            kwargs["entrypoint"] = [*kwargs["entrypoint"],
                                    "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
                                    "--runtime-api-address", f"127.0.0.1:{free_port()}"]
        return create(self, image, command, **kwargs)

    return create_container


def main() -> None:
    docker.models.containers.ContainerCollection.create = host_networked(
        docker.models.containers.ContainerCollection.create)
    # Everything stays on this machine: no check of PyPI for a newer SAM CLI.
    from samcli.lib.utils import version_checker

    version_checker.is_version_check_overdue = lambda *_: False
    from samcli.cli.main import cli

    sys.argv = ["sam", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
