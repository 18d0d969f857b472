"""What the tests run: the source tree, the tunlabd and tunlabctl binaries under test (TUNLABD,
TUNLABCTL, else the debug build), and whether this machine can run them at all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# What every lab needs in PATH (a suite may ask for more: plugin.py's `required_tools`).
TOOLS = ("ip", "ping", "ss", "dbus-daemon")


def tunlabd_path() -> Path:
    return Path(os.environ.get("TUNLABD", REPO_ROOT / "build" / "debug" / "daemon" / "tunlabd"))


def tunlabctl_path() -> Path:
    """TUNLABCTL, else the tunlabctl of the same build tree as tunlabd."""
    if "TUNLABCTL" in os.environ:
        return Path(os.environ["TUNLABCTL"])
    return tunlabd_path().parent.parent / "client-cli" / "tunlabctl"


def missing_tools(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def missing_prerequisite(extra_tools: tuple[str, ...] = ()) -> str | None:
    """Why this machine cannot run the lab, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    missing = missing_tools(*TOOLS, *extra_tools)
    if missing:
        return f"needs {', '.join(missing)} in PATH"
    return None
