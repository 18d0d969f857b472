"""Helpers for the hostile-input tests (test_hostile_flood.py, test_hostile_bus.py,
test_learned_peer_exhaustion.py): measuring a daemon from outside (RSS, open fds, the kernel's
UDP counters in its namespace), building and blasting datagrams, and a minimal D-Bus client
that speaks the wire protocol itself.

Why a D-Bus client of our own: the hostile-bus tests must send what well-behaved libraries
refuse to build (invalid UTF-8, bad object paths, nonsense signatures, file descriptors in
variants) and must pipeline thousands of calls per second; python-dbus and busctl validate
everything and wait for each reply. The protocol is small: EXTERNAL authentication, then
little-endian messages (a 16-byte fixed header, an array of header fields, the body).

Everything here works on lab.py's objects (Lab, Daemon) without changing them.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import os
import select
import socket
import struct
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from lab import RECEIVE_DROP_REASONS

# ── measuring the daemon from outside ───────────────────────────────────────────────────


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def sanitized(pid: int) -> bool:
    """Whether process `pid` runs with AddressSanitizer (the asan preset). Its allocator keeps
    freed memory in quarantine, so RSS grows with any allocation traffic: RSS flatness means
    nothing there (LeakSanitizer checks leaks at exit instead)."""
    return "libasan" in Path(f"/proc/{pid}/maps").read_text()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def daemon_pid(daemon) -> int:
    """The tunlabd process of a lab.Daemon (`ip netns exec` execs it: same pid)."""
    pid = daemon.proc.pid
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    assert comm == "tunlabd", f"pid {pid} is {comm!r}, not tunlabd"
    return pid


def datagrams_accounted(counters: dict[str, int]) -> int:
    """What the daemon says it read from its socket: every datagram ends up delivered
    (rx_packets), as a keepalive, or in exactly one receive-side drop reason
    (docs/dbus-api.md, "Counters")."""
    return (counters["rx_packets"] + counters["rx_keepalives"]
            + sum(counters[f"drop_{reason}"] for reason in RECEIVE_DROP_REASONS))


@dataclasses.dataclass(frozen=True)
class KernelUdp:
    """The kernel's UDP counters of one network namespace (IPv4 + IPv6 MIBs summed, since a
    dual-stack socket's IPv4 datagrams count in the IPv4 MIB).

    in_datagrams: datagrams a socket *read* (the kernel counts them in recvmsg), so in a
    namespace where tunlabd owns the only UDP socket that receives anything, this is exactly
    the number of datagrams tunlabd received. in_errors includes rcvbuf_errors (datagrams
    dropped because the socket's receive buffer was full): those never reached the daemon.
    """
    in_datagrams: int
    rcvbuf_errors: int
    in_errors: int
    no_ports: int
    reassembly_failures: int

    def __sub__(self, other: "KernelUdp") -> "KernelUdp":
        return KernelUdp(*(a - b for a, b in zip(dataclasses.astuple(self),
                                                  dataclasses.astuple(other))))


def _snmp_table(text: str, prefix: str) -> dict[str, int]:
    rows = [line.split() for line in text.splitlines() if line.startswith(prefix + ":")]
    header, values = rows[0], rows[1]
    return dict(zip(header[1:], (int(value) for value in values[1:])))


def kernel_udp(pid: int) -> KernelUdp:
    """The UDP counters of the network namespace process `pid` lives in (read through
    /proc/<pid>/net, so no process has to be started in the namespace)."""
    snmp = Path(f"/proc/{pid}/net/snmp").read_text()
    udp = _snmp_table(snmp, "Udp")
    ip = _snmp_table(snmp, "Ip")
    udp6: dict[str, int] = {}
    ip6_reassembly_failures = 0
    with contextlib.suppress(FileNotFoundError):
        for line in Path(f"/proc/{pid}/net/snmp6").read_text().splitlines():
            name, value = line.split()
            if name.startswith("Udp6"):
                udp6[name[4:]] = int(value)
            elif name == "Ip6ReasmFails":
                ip6_reassembly_failures = int(value)
    return KernelUdp(
        in_datagrams=udp["InDatagrams"] + udp6.get("InDatagrams", 0),
        rcvbuf_errors=udp["RcvbufErrors"] + udp6.get("RcvbufErrors", 0),
        in_errors=udp["InErrors"] + udp6.get("InErrors", 0),
        no_ports=udp["NoPorts"] + udp6.get("NoPorts", 0),
        reassembly_failures=ip["ReasmFails"] + ip6_reassembly_failures,
    )


# ── sockets inside lab namespaces ──────────────────────────────────────────────────────

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def socket_in_namespace(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket of this process living in network namespace `ns` (lab.Lab.socket cannot make
    raw sockets). The caller closes it."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{ns}") as target:
        _setns(target.fileno())
        try:
            return socket.socket(family, kind, proto)
        finally:
            _setns(home.fileno())


# ── packets ─────────────────────────────────────────────────────────────────────────────


def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_reply(size: int, identifier: int = 0x7e57) -> bytes:
    """An ICMP echo reply of `size` bytes: delivered to a host, it is silently ignored, so a
    hostile packet that gets through adds no traffic of its own."""
    body = struct.pack("!BBHHH", 0, 0, 0, identifier, 1) + bytes(size - 8)
    return body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]


def ipv4(source: str, destination: str, total_size: int = 60, *, version: int = 4,
         ihl: int = 5, total_length: int | None = None) -> bytes:
    """An IPv4 packet (ICMP echo reply inside) of `total_size` bytes; the keywords falsify
    header fields."""
    header = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0,
                         total_size if total_length is None else total_length,
                         0x1234, 0, 64, socket.IPPROTO_ICMP, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return header + echo_reply(total_size - 20)


def ipv6(source: str, destination: str, total_size: int = 60, *,
         payload_length: int | None = None) -> bytes:
    header = struct.pack("!IHBB16s16s", 6 << 28,
                         total_size - 40 if payload_length is None else payload_length,
                         59, 64,  # 59: no next header
                         socket.inet_pton(socket.AF_INET6, source),
                         socket.inet_pton(socket.AF_INET6, destination))
    return header + bytes(total_size - 40)


def udp_over_ipv4(source: str, source_port: int, destination: str, destination_port: int,
                  payload: bytes) -> bytes:
    """A whole IPv4+UDP datagram for a raw socket (IPPROTO_RAW), so that one socket can send
    from any source port. UDP checksum 0: none, which IPv4 allows. The kernel fills in the IP
    checksum."""
    udp = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64,
                         socket.IPPROTO_UDP, 0, socket.inet_aton(source),
                         socket.inet_aton(destination))
    return header + udp


class RawUdpSender:
    """Sends UDP from any source port of one address, through one raw socket in a lab host."""

    def __init__(self, ns: str, source: str):
        self.source = source
        self.sock = socket_in_namespace(ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)

    def datagram(self, source_port: int, destination: tuple[str, int], payload: bytes) -> bytes:
        return udp_over_ipv4(self.source, source_port, destination[0], destination[1], payload)

    def close(self) -> None:
        self.sock.close()


def paced_send(items: Sequence[tuple[Any, bytes, Any]], rate: float | None,
               burst: int = 32, deadline: float | None = None) -> int:
    """Sends (socket, bytes, address) items in order, `rate` per second in bursts (None: as
    fast as possible). Returns how many went out; stops early at `deadline` (monotonic).
    A send that fails with ENOBUFS/EAGAIN is retried after a short wait, so that the count
    returned is what the network was handed."""
    sent = 0
    start = time.monotonic()
    for sock, payload, address in items:
        while True:
            try:
                sock.sendto(payload, address)
                break
            except (BlockingIOError, OSError) as error:
                if isinstance(error, BlockingIOError) or error.errno == errno.ENOBUFS:
                    time.sleep(0.0005)
                    continue
                raise
        sent += 1
        if rate is not None and sent % burst == 0:
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if deadline is not None and sent % burst == 0 and time.monotonic() > deadline:
            break
    return sent


# ── a minimal D-Bus client ──────────────────────────────────────────────────────────────

METHOD_CALL, METHOD_RETURN, ERROR = 1, 2, 3

_FIELD_PATH, _FIELD_INTERFACE, _FIELD_MEMBER, _FIELD_ERROR_NAME = 1, 2, 3, 4
_FIELD_REPLY_SERIAL, _FIELD_DESTINATION, _FIELD_SENDER, _FIELD_SIGNATURE = 5, 6, 7, 8
_FIELD_UNIX_FDS = 9

_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
          "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}


def _alignment(code: str) -> int:
    if code in _FIXED:
        return _FIXED[code][1]
    return {"s": 4, "o": 4, "g": 1, "v": 1, "a": 4, "(": 8, "{": 8}[code]


def _type_end(signature: str, start: int) -> int:
    """Index just past the single complete type starting at signature[start]."""
    code = signature[start]
    if code == "a":
        return _type_end(signature, start + 1)
    if code in "({":
        close = ")" if code == "(" else "}"
        position = start + 1
        while signature[position] != close:
            position = _type_end(signature, position)
        return position + 1
    return start + 1


def split_signature(signature: str) -> list[str]:
    types, position = [], 0
    while position < len(signature):
        end = _type_end(signature, position)
        types.append(signature[position:end])
        position = end
    return types


@dataclasses.dataclass
class Variant:
    """A D-Bus variant: its signature (bytes allowed, to send invalid ones) and value."""
    signature: str | bytes
    value: Any


class Raw:
    """Bytes put into a message as they are, unaligned (to write what no type describes)."""

    def __init__(self, data: bytes):
        self.data = data


class Fd:
    """A file descriptor to pass in an 'h' argument."""

    def __init__(self, fd: int):
        self.fd = fd


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class _Writer:
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.fds: list[int] = []

    def pad(self, alignment: int) -> None:
        self.buffer += bytes(-len(self.buffer) % alignment)

    def write(self, signature: str, value: Any) -> None:
        if isinstance(value, Raw):
            self.buffer += value.data
            return
        code = signature[0]
        if code in _FIXED:
            fmt, size = _FIXED[code]
            self.pad(size)
            if code == "h":
                self.fds.append(value.fd)
                value = len(self.fds) - 1
            self.buffer += struct.pack("<" + fmt, int(value) if code != "d" else value)
        elif code in "so":
            data = _as_bytes(value)
            self.pad(4)
            self.buffer += struct.pack("<I", len(data)) + data + b"\0"
        elif code == "g":
            data = _as_bytes(value)
            self.buffer += struct.pack("<B", len(data)) + data + b"\0"
        elif code == "v":
            self.write("g", value.signature)
            if isinstance(value.value, Raw):
                self.buffer += value.value.data
            else:
                self.write(_as_bytes(value.signature).decode(), value.value)
        elif code == "a":
            element = signature[1:]
            self.pad(4)
            length_at = len(self.buffer)
            self.buffer += b"\0\0\0\0"
            self.pad(_alignment(element[0]))
            start = len(self.buffer)
            items = value.items() if isinstance(value, dict) else value
            for item in items:
                self.write(element, item)
            struct.pack_into("<I", self.buffer, length_at, len(self.buffer) - start)
        elif code in "({":
            self.pad(8)
            for member, item in zip(split_signature(signature[1:-1]), value):
                self.write(member, item)
        else:
            raise ValueError(f"cannot marshal type {signature!r}")


def marshal(signature: str, values: Sequence[Any]) -> tuple[bytes, list[int]]:
    writer = _Writer()
    for member, value in zip(split_signature(signature), values, strict=True):
        writer.write(member, value)
    return bytes(writer.buffer), writer.fds


class _Reader:
    def __init__(self, data: bytes, offset: int = 0):
        self.data = data
        self.position = offset

    def pad(self, alignment: int) -> None:
        self.position += -self.position % alignment

    def read(self, signature: str) -> Any:
        code = signature[0]
        if code in _FIXED:
            fmt, size = _FIXED[code]
            self.pad(size)
            (value,) = struct.unpack_from("<" + fmt, self.data, self.position)
            self.position += size
            return bool(value) if code == "b" else value
        if code in "so":
            self.pad(4)
            (length,) = struct.unpack_from("<I", self.data, self.position)
            start = self.position + 4
            self.position = start + length + 1
            return self.data[start:start + length].decode(errors="replace")
        if code == "g":
            length = self.data[self.position]
            start = self.position + 1
            self.position = start + length + 1
            return self.data[start:start + length].decode()
        if code == "v":
            inner = self.read("g")
            return Variant(inner, self.read(inner))
        if code == "a":
            element = signature[1:]
            self.pad(4)
            (length,) = struct.unpack_from("<I", self.data, self.position)
            self.position += 4
            self.pad(_alignment(element[0]))
            end = self.position + length
            items = []
            while self.position < end:
                items.append(self.read(element))
            return dict(items) if element[0] == "{" else items
        if code in "({":
            self.pad(8)
            return tuple(self.read(member) for member in split_signature(signature[1:-1]))
        raise ValueError(f"cannot unmarshal type {signature!r}")


def unwrap(value: Any) -> Any:
    """Strips Variant wrappers, recursively (for property values)."""
    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


@dataclasses.dataclass
class Message:
    type: int
    serial: int
    fields: dict[int, Any]
    body: list[Any]

    @property
    def error_name(self) -> str | None:
        return self.fields.get(_FIELD_ERROR_NAME)

    @property
    def reply_serial(self) -> int | None:
        return self.fields.get(_FIELD_REPLY_SERIAL)

    @property
    def outcome(self) -> str:
        """"ok" for a method return, else the error name."""
        return "ok" if self.type == METHOD_RETURN else (self.error_name or "?")

    @property
    def error_message(self) -> str:
        return self.body[0] if self.type == ERROR and self.body else ""


def encode_message(kind: int, serial: int, fields: list[tuple[int, Variant]], body: bytes,
                   flags: int = 0) -> bytes:
    """A complete little-endian message. Field values are Variants so that a test can put
    anything there (a bad object path, a wrong type)."""
    writer = _Writer()
    writer.buffer += struct.pack("<cBBBII", b"l", kind, flags, 1, len(body), serial)
    writer.write("a(yv)", fields)
    writer.pad(8)
    return bytes(writer.buffer) + body


def method_call_fields(destination: str, path: str | bytes, interface: str | None,
                       member: str | bytes, signature: str | bytes, fds: int = 0
                       ) -> list[tuple[int, Variant]]:
    fields = [(_FIELD_PATH, Variant("o", path)), (_FIELD_MEMBER, Variant("s", member)),
              (_FIELD_DESTINATION, Variant("s", destination))]
    if interface is not None:
        fields.append((_FIELD_INTERFACE, Variant("s", interface)))
    if signature:
        fields.append((_FIELD_SIGNATURE, Variant("g", signature)))
    if fds:
        fields.append((_FIELD_UNIX_FDS, Variant("u", fds)))
    return fields


class BusClosed(Exception):
    """The bus daemon closed the connection (as it does after a malformed message)."""


class BusConnection:
    """One authenticated connection to a dbus-daemon, with pipelining.

    call() sends one method call and waits for its reply; pipeline() keeps up to `window`
    calls in flight. Signals and other unsolicited messages are discarded.
    """

    def __init__(self, address_or_path: str | Path, negotiate_fds: bool = False,
                 timeout: float = 10.0):
        path = str(address_or_path)
        if path.startswith("unix:path="):
            path = path[len("unix:path="):].split(",")[0]
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._buffer = bytearray()
        self._serial = 0
        self._replies: dict[int, Message] = {}
        self.fds_agreed = False
        self._authenticate(negotiate_fds)
        hello = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "Hello")
        assert hello.type == METHOD_RETURN, hello
        self.unique_name = hello.body[0]

    # connection set-up

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise BusClosed("closed during authentication")
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\r\n")
        self._buffer = bytearray(rest)
        return line

    def _authenticate(self, negotiate_fds: bool) -> None:
        uid = str(os.geteuid()).encode().hex().encode()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\n")
        reply = self._line()
        if not reply.startswith(b"OK "):
            raise BusClosed(f"authentication refused: {reply!r}")
        if negotiate_fds:
            self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
            self.fds_agreed = self._line() == b"AGREE_UNIX_FD"
        self.sock.sendall(b"BEGIN\r\n")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "BusConnection":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # sending

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def send_bytes(self, data: bytes, fds: Sequence[int] = ()) -> None:
        try:
            if fds:
                self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                            struct.pack(f"{len(fds)}i", *fds))])
            else:
                self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as error:
            raise BusClosed(str(error)) from error

    def encode_call(self, destination: str, path: str | bytes, interface: str | None,
                    member: str, signature: str = "", args: Sequence[Any] = (),
                    flags: int = 0) -> tuple[int, bytes, list[int]]:
        body, fds = marshal(signature, args) if signature else (b"", [])
        serial = self.next_serial()
        fields = method_call_fields(destination, path, interface, member, signature, len(fds))
        return serial, encode_message(METHOD_CALL, serial, fields, body, flags), fds

    def send_call(self, destination: str, path: str | bytes, interface: str | None,
                  member: str, signature: str = "", args: Sequence[Any] = (),
                  flags: int = 0) -> int:
        serial, data, fds = self.encode_call(destination, path, interface, member, signature,
                                             args, flags)
        self.send_bytes(data, fds)
        return serial

    # receiving

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no reply from the bus in time")
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            raise TimeoutError("no reply from the bus in time")
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError as error:
            raise BusClosed(str(error)) from error
        if not chunk:
            raise BusClosed("the bus closed the connection")
        self._buffer += chunk

    def _parse_one(self) -> Message | None:
        if len(self._buffer) < 16:
            return None
        endian, kind, _flags, _version, body_length, serial, fields_length = \
            struct.unpack_from("<cBBBIII", self._buffer, 0)
        assert endian == b"l", f"big-endian message from the bus: {bytes(self._buffer[:16])!r}"
        header_end = 16 + fields_length
        header_end += -header_end % 8
        total = header_end + body_length
        if len(self._buffer) < total:
            return None
        data = bytes(self._buffer[:total])
        del self._buffer[:total]
        reader = _Reader(data, 12)
        fields = {code: value.value for code, value in reader.read("a(yv)")}
        signature = fields.get(_FIELD_SIGNATURE, "")
        body_reader = _Reader(data, header_end)
        body = [body_reader.read(member) for member in split_signature(signature)]
        return Message(kind, serial, fields, body)

    def receive(self, deadline: float) -> Message:
        while True:
            message = self._parse_one()
            if message is not None:
                return message
            self._fill(deadline)

    def wait_reply(self, serial: int, timeout: float | None = None) -> Message:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while serial not in self._replies:
            message = self.receive(deadline)
            if message.reply_serial is not None:
                self._replies[message.reply_serial] = message
        return self._replies.pop(serial)

    # calls

    def call(self, destination: str, path: str | bytes, interface: str | None, member: str,
             signature: str = "", args: Sequence[Any] = (), timeout: float | None = None
             ) -> Message:
        serial = self.send_call(destination, path, interface, member, signature, args)
        return self.wait_reply(serial, timeout)

    def pipeline(self, encoded: Iterable[tuple[int, bytes, list[int]]], window: int = 64,
                 timeout: float | None = None) -> list[Message]:
        """Sends pre-encoded calls (from encode_call) keeping at most `window` unanswered;
        returns the replies in call order."""
        deadline_for = (lambda: time.monotonic() + (self.timeout if timeout is None
                                                    else timeout))
        order: list[int] = []
        in_flight: set[int] = set()
        replies: dict[int, Message] = {}
        pending_out = bytearray()
        for serial, data, fds in encoded:
            if fds:
                self.send_bytes(bytes(pending_out))
                pending_out.clear()
                self.send_bytes(data, fds)
            else:
                pending_out += data
            order.append(serial)
            in_flight.add(serial)
            if len(in_flight) >= window:
                self.send_bytes(bytes(pending_out))
                pending_out.clear()
                deadline = deadline_for()
                while len(in_flight) >= window // 2:
                    self._collect(in_flight, replies, deadline)
        self.send_bytes(bytes(pending_out))
        deadline = deadline_for()
        while in_flight:
            self._collect(in_flight, replies, deadline)
        return [replies[serial] for serial in order]

    def _collect(self, in_flight: set[int], replies: dict[int, Message], deadline: float
                 ) -> None:
        message = self.receive(deadline)
        serial = message.reply_serial
        if serial in in_flight:
            in_flight.discard(serial)
            replies[serial] = message

    # conveniences for org.tunlab1

    def get_property(self, path: str, interface: str, name: str) -> Any:
        reply = self.call("org.tunlab1", path, "org.freedesktop.DBus.Properties", "Get", "ss",
                          [interface, name])
        assert reply.type == METHOD_RETURN, (reply.error_name, reply.error_message)
        return unwrap(reply.body[0])


# ── call storms ─────────────────────────────────────────────────────────────────────────

BUS_NAME = "org.tunlab1"


@dataclasses.dataclass(frozen=True)
class Call:
    """One method call of a storm and the answer it must get: "ok" or an exact error name,
    whose message must contain `mentions` (the API names the offending argument)."""
    what: str
    path: str | bytes
    interface: str | None
    member: str
    signature: str
    args: tuple
    expect: str
    mentions: str = ""

    def check(self, reply: Message) -> str | None:
        """None if `reply` is what the call must get, else why not."""
        if reply.outcome != self.expect:
            return f"{self.what}: got {reply.outcome} {reply.error_message[:200]!r}, " \
                   f"expected {self.expect}"
        if self.mentions and self.mentions not in reply.error_message:
            return f"{self.what}: message {reply.error_message[:200]!r} does not mention " \
                   f"{self.mentions!r}"
        return None


@dataclasses.dataclass
class StormResult:
    calls: int
    seconds: float
    by_outcome: dict[str, int]      # "what -> outcome" counts
    mismatches: list[str]           # first few replies that were not as expected

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def _storm_worker(address: str, calls: list[Call], window: int, start, results) -> None:
    """One client process of a storm: connects, waits for the start signal, pipelines its
    calls, reports (count, seconds, outcomes, mismatches)."""
    try:
        with BusConnection(address, timeout=60) as connection:
            encoded = [connection.encode_call(BUS_NAME, call.path, call.interface, call.member,
                                              call.signature, call.args) for call in calls]
            results.put(("ready", None))
            start.wait()
            began = time.monotonic()
            replies = connection.pipeline(encoded, window=window, timeout=60)
            seconds = time.monotonic() - began
        outcomes: dict[str, int] = {}
        mismatches = []
        for call, reply in zip(calls, replies):
            key = f"{call.what} -> {reply.outcome}"
            outcomes[key] = outcomes.get(key, 0) + 1
            problem = call.check(reply)
            if problem and len(mismatches) < 10:
                mismatches.append(problem)
        results.put(("done", (len(replies), seconds, outcomes, mismatches)))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put(("error", f"{type(error).__name__}: {error}"))


class Storm:
    """`calls` to be sent from `clients` processes at once, each its own bus connection keeping
    up to `window` calls in flight. Creating it forks the clients, which connect, encode their
    share and wait; run() releases them and checks every reply. (Forking before any other
    thread of the test starts keeps the children clear of locks such a thread might hold.)"""

    def __init__(self, address: str, calls: Sequence[Call], clients: int, window: int = 32,
                 timeout: float = 120.0):
        import multiprocessing
        context = multiprocessing.get_context("fork")
        self.timeout = timeout
        self._start = context.Event()
        self._results = context.Queue()
        shares = [list(calls[index::clients]) for index in range(clients)]
        self._workers = [context.Process(target=_storm_worker,
                                         args=(address, share, window, self._start,
                                               self._results), daemon=True)
                         for share in shares]
        for worker in self._workers:
            worker.start()
        try:
            for _ in self._workers:
                kind, payload = self._results.get(timeout=timeout)
                assert kind == "ready", f"storm client failed before the start: {payload}"
        except BaseException:
            self.close()
            raise

    def run(self) -> StormResult:
        try:
            deadline = time.monotonic() + self.timeout
            began = time.monotonic()
            self._start.set()
            total, outcomes, mismatches = 0, {}, []
            for _ in self._workers:
                kind, payload = self._results.get(timeout=max(1.0,
                                                              deadline - time.monotonic()))
                assert kind == "done", f"storm client failed: {payload}"
                count, _seconds, worker_outcomes, worker_mismatches = payload
                total += count
                for key, number in worker_outcomes.items():
                    outcomes[key] = outcomes.get(key, 0) + number
                mismatches += worker_mismatches
            seconds = time.monotonic() - began
        finally:
            self.close()
        return StormResult(total, seconds, dict(sorted(outcomes.items())), mismatches)

    def close(self) -> None:
        """Ends the clients (at once if they never got to run)."""
        for worker in self._workers:
            worker.join(timeout=5 if self._start.is_set() else 0)
            if worker.is_alive():
                worker.kill()
                worker.join()


def storm(address: str, calls: Sequence[Call], clients: int, window: int = 32,
          timeout: float = 120.0) -> StormResult:
    """Storm(...).run(): prepare and send at once."""
    return Storm(address, calls, clients, window, timeout).run()
