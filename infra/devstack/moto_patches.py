"""Every change devstack makes to the moto it runs, in one registry, applied in this order:

- `fixes` (`moto_fixes.py`): where moto is kinder than AWS or unsafe under concurrency;
- `speedups` (`moto_speedups.py`): the same answers, faster; can be left out to measure them;
- `faults` (`faults.py`): the failures devstack injects on request;
- `limits` (`limits.py`): AWS's size limits, after the faults so that a call over a limit is
  refused before a fault is drawn for it.

Each reaches into moto's internals as they are in one version, so they are applied only to that
version (`MOTO_VERSION`, the pin in infra/requirements.txt), and at most once in a process:
wrapping a method twice would run its check twice and take its lock inside itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import version

from . import faults, limits, moto_fixes, moto_speedups

MOTO_VERSION = "5.2.5"

PATCHES: dict[str, Callable[[], None]] = {
    "fixes": moto_fixes.apply,
    "speedups": moto_speedups.apply,
    "faults": faults.apply,
    "limits": limits.apply,
}

_applied: list[str] = []
_lock = threading.Lock()


class MotoVersionError(RuntimeError):
    pass


def check_version(installed: str | None = None) -> None:
    installed = installed or version("moto")
    if installed != MOTO_VERSION:
        raise MotoVersionError(
            f"devstack's patches are written against moto {MOTO_VERSION}, and moto {installed} is installed: "
            f"install infra/requirements.txt (make e2e does), or port moto_fixes, moto_speedups, faults and "
            f"limits to the new version and change MOTO_VERSION")


def apply(*, speedups: bool = True) -> tuple[str, ...]:
    """Applies each patch not yet applied in this process (all but `speedups` when it is False);
    answers those now in effect."""
    check_version()
    with _lock:
        for name, install in PATCHES.items():
            if name in _applied or (name == "speedups" and not speedups):
                continue
            install()
            _applied.append(name)
        return tuple(_applied)
