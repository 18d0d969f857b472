"""Running programs that look for WireGuard's control sockets in /run/wireguard (`wg`, and
`tunlabctl export`) against one test daemon's socket directory instead.

Debian's `wg` has /var/run/wireguard compiled in. Each test daemon serves its sockets from a
directory of its own (`--uapi-dir`), so that tests running side by side never see each
other's interfaces; the program runs in a private mount namespace where that directory is
bind-mounted over /run/wireguard, and sees exactly that daemon's sockets there."""

from __future__ import annotations

from pathlib import Path

SYSTEM_UAPI_DIRECTORY = Path("/run/wireguard")


def in_uapi_directory(directory: Path, argv: list[str]) -> list[str]:
    """`argv`, to run with `directory` as /run/wireguard (and the rest of the system as is)."""
    script = ('mkdir -p "$1" && mount --bind "$0" "$1" && shift && exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
            str(directory), str(SYSTEM_UAPI_DIRECTORY), *argv]
