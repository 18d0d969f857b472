"""Running programs that look for WireGuard's control sockets in /run/wireguard (`wg`, and
`tunlabctl export`) against one test daemon's socket directory instead.

Debian's `wg` has /var/run/wireguard compiled in. Each test daemon serves its sockets from a
directory of its own (`--uapi-dir`), so that tests running side by side never see each
other's interfaces; the program runs in a private mount namespace where that directory is
bind-mounted over /run/wireguard, and sees exactly that daemon's sockets there."""

from __future__ import annotations

import base64
import errno as _errno
import socket
import time
from pathlib import Path

SYSTEM_UAPI_DIRECTORY = Path("/run/wireguard")


def in_uapi_directory(directory: Path, argv: list[str]) -> list[str]:
    """`argv`, to run with `directory` as /run/wireguard (and the rest of the system as is)."""
    script = ('mkdir -p "$1" && mount --bind "$0" "$1" && shift && exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
            str(directory), str(SYSTEM_UAPI_DIRECTORY), *argv]


# ── speaking the protocol directly (test_wireguard_uapi.py, test_hostile_uapi.py) ──────────
#
# WireGuard's cross-platform userspace API (WIREGUARD.md, "UAPI"): a request is `get=1` or
# `set=1` followed by `key=value` lines and an empty line; the reply is `key=value` lines
# ending with `errno=N` (0, or a NEGATIVE errno) and an empty line. Keys are hex here.

# The errno values a tunlabd reply may name (negated on the wire).
EIO = _errno.EIO                 # 5: a line over 4096 bytes, a request over 32 MiB (then closed)
EINVAL = _errno.EINVAL           # 22: unknown key, bad value
EPROTO = _errno.EPROTO           # 71: a line without '='
EOPNOTSUPP = _errno.EOPNOTSUPP   # 95: a non-zero fwmark
EADDRINUSE = _errno.EADDRINUSE   # 98: listen_port taken

MAX_LINE = 4096


def socket_path(directory: Path, interface: str) -> Path:
    return directory / f"{interface}.sock"


def hex_key(key: str) -> str:
    """A base64 key (as `wg` and tunlabctl print them) as the socket spells it: 64 hex digits."""
    raw = base64.b64decode(key, validate=True)
    assert len(raw) == 32, key
    return raw.hex()


def base64_key(hex_digits: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digits)).decode()


class UapiConnection:
    """One client connection to a UAPI socket; every read has a deadline."""

    def __init__(self, path: Path, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.sock.connect(str(path))
        self._buffer = b""

    def __enter__(self) -> "UapiConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self) -> str:
        """One reply: everything up to and including the first empty line. Fails if the
        connection closes first (with what came until then)."""
        deadline = time.monotonic() + self.timeout
        while b"\n\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no complete reply within {self.timeout:g}s; got "
                                     f"{self._buffer[:300]!r}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise AssertionError(f"connection closed before a complete reply; got "
                                     f"{self._buffer[:300]!r}")
            self._buffer += chunk
        end = self._buffer.index(b"\n\n") + 2
        text, self._buffer = self._buffer[:end], self._buffer[end:]
        return text.decode()

    def request(self, text: str) -> str:
        self.send(text)
        return self.reply()

    def rest_until_closed(self, timeout: float) -> bytes | None:
        """What the daemon still sends until it closes the connection (an orderly close or a
        reset both count as closed), or None if it is still open after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        data, self._buffer = self._buffer, b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return None
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


def uapi_request(path: Path, text: str, timeout: float = 10.0) -> str:
    """One request on a connection of its own; its reply."""
    with UapiConnection(path, timeout) as connection:
        return connection.request(text)


def errno_reply(code: int) -> str:
    """The whole reply to a set that failed with errno `code` (0: succeeded)."""
    return f"errno={-code if code else 0}\n\n"


def parse_get(reply: str) -> tuple[list[tuple[str, str]], list[list[tuple[str, str]]]]:
    """The reply to get=1 as (interface lines, one list of lines per peer), each line a
    (key, value) pair in the order sent. Fails unless it ends with errno=0 and an empty line."""
    assert reply.endswith("\nerrno=0\n\n"), reply[-200:]
    interface: list[tuple[str, str]] = []
    peers: list[list[tuple[str, str]]] = []
    for line in reply[:-len("errno=0\n\n")].splitlines():
        key, separator, value = line.partition("=")
        assert separator, f"a line without '=' in the reply: {line!r}"
        if key == "public_key":
            peers.append([])
        (peers[-1] if peers else interface).append((key, value))
    return interface, peers


# A client run as another user (through as_user): connects, sends get=1 and prints one line,
# "connect <ERRNO NAME>", "closed <bytes received>" or "open <bytes received>".
CONNECT_PROGRAM = r"""
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[2]))
try:
    s.connect(sys.argv[1])
except OSError as error:
    print("connect", errno.errorcode.get(error.errno, error.errno))
    sys.exit(0)
data = b""
try:
    s.sendall(b"get=1\n\n")
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    print("open", repr(data))
    sys.exit(0)
except OSError:
    pass
print("closed", repr(data))
"""
