"""Running things for the tests: commands with a timeout and a readable failure, commands as
another user (setpriv), this package's own programs, and polling until something is true."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable

# Debian's interpreter: the lab's programs need scapy and the D-Bus clients python3-dbus, which
# Debian installs for it only.
SYSTEM_PYTHON = "/usr/bin/python3"

# The folder that holds this package (tests/).
PACKAGE_PARENT = Path(__file__).resolve().parents[1]

# The unprivileged local user of the tests: nobody, with no supplementary groups (unless the
# caller gives some).
NOBODY = 65534


def as_user(argv: list[str], uid: int = NOBODY, gid: int = NOBODY,
            groups: tuple[int, ...] = ()) -> list[str]:
    """`argv` run as another user, with exactly `groups` as supplementary groups."""
    group_args = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", *group_args, *argv]


def harness_program(module: str, *args: str) -> list[str]:
    """The argv of this package's module `module` run as a program (`python3 -m
    harness.MODULE ARGS`, Debian's interpreter). PYTHONPATH names the package's folder, so
    that it runs from any directory, in any namespace, as any user (with as_user())."""
    return ["env", f"PYTHONPATH={PACKAGE_PARENT}", SYSTEM_PYTHON, "-m", f"harness.{module}",
            *args]


def run(argv: list[str], check: bool = True, timeout: float = 60.0
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


class WaitTimeout(AssertionError):
    """A polled condition did not come true in time (an AssertionError so pytest shows it as
    a test failure with the message, not as an error in the harness)."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.02) -> Any:
    """Polls `predicate` until it returns something truthy and returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
