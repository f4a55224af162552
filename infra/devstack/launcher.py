"""Every local stack the project starts, each on ports of its own so that any of them can run
beside `make run`, and `launch`, a context manager that starts one and stops it, used by the
end-to-end tests, the Python benchmarks (`infra/bench`), the soak and the sam-local checks.
`make run` is `python -m infra.devstack up` on the `run` ports; the Rust bench (`tools/bench`)
runs the same with `--ports bench`."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = ROOT / "infra" / "demo-data.json"
# `make build`'s binaries: every cargo command of the Makefile names the host's target triple, as
# cargo lambda does for `sam build`, so that one debug build serves both.
HOST_TRIPLE = f"{'aarch64' if platform.machine() in ('aarch64', 'arm64') else 'x86_64'}-unknown-linux-gnu"
DEBUG_BINARIES = ROOT / "target" / HOST_TRIPLE / "debug"


@dataclass(frozen=True)
class Ports:
    api: int
    moto: int
    control: int


PORTS = {
    "run": Ports(3000, 4566, 3999),  # make run
    "tests": Ports(3100, 4600, 3199),  # make e2e: the session's stack
    "tests-deadline": Ports(3150, 4650, 3198),  # tests/test_decision_deadline.py
    "tests-iam": Ports(3160, 4660, 3197),  # tests/test_iam_enforcement.py
    "bench": Ports(3200, 4700, 3299),  # make bench, make bench-local-stack (one at a time)
    "soak": Ports(3300, 4800, 3399),  # make soak
    "sam-local": Ports(3400, 4500, 3499),  # make sam-local
}
# Beside a stack: `sam local start-api` (sam-local), plain moto to compare with (bench-local-stack).
SAM_LOCAL_API_PORT = 3450
PLAIN_MOTO_PORT = 4701


class DidNotStart(RuntimeError):
    """devstack exited or was not ready in time; the message names its log."""


@contextmanager
def launch(ports: str, logs: Path, *, template: Path = ROOT / "template.yaml",
           parameters: str | Sequence[str] = "", faults: dict[str, Any] | None = None, speedups: bool = True,
           instances: int = 2, seeds: Sequence[Path] = (), demo_data: bool = True,
           timeout: float = 60) -> Iterator[dict[str, Any]]:
    """Starts devstack on `PORTS[ports]` and yields its state (endpoints, resource names, the
    issuer; `pid` too) once it is ready; stops it afterwards. Its output goes to
    `logs`/devstack.log, the functions' logs beside it."""
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    state = Path(tempfile.mkdtemp()) / "state.json"
    overrides = parameters if isinstance(parameters, str) else " ".join(parameters)
    command = [sys.executable, "-m", "infra.devstack", "--ports", ports, "--template", str(template),
               "--log-dir", str(logs), "--instances", str(instances), "--parameter-overrides", overrides,
               *([] if speedups else ["--no-speedups"]),
               "up", "--state", str(state), "--faults", json.dumps(faults or {}),
               *(["--demo-data", str(DEMO_DATA)] if demo_data else []),
               *(argument for seed in seeds for argument in ("--seed", str(seed)))]
    with open(logs / "devstack.log", "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while not state.exists():
            if process.poll() is not None:
                raise DidNotStart(f"devstack exited ({process.returncode}); see {logs / 'devstack.log'}")
            if time.time() > deadline:
                raise DidNotStart(f"devstack was not ready within {timeout:.0f} s; see {logs / 'devstack.log'}")
            time.sleep(0.1)
        yield {**json.loads(state.read_text()), "pid": process.pid}
    finally:
        process.terminate()
        process.wait(timeout=30)
