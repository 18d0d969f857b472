"""A minimal D-Bus client that speaks the wire protocol itself: marshalling and unmarshalling,
message encoding, and BusConnection (authentication, calls, pipelining).

Why a D-Bus client of our own: the hostile-bus tests must send what well-behaved libraries
refuse to build (invalid UTF-8, bad object paths, nonsense signatures, file descriptors in
variants) and must pipeline thousands of calls per second; python-dbus and busctl validate
everything and wait for each reply. The protocol is small: EXTERNAL authentication, then
little-endian messages (a 16-byte fixed header, an array of header fields, the body).

Standard library only, so that programs run as another user (bus_sweep.py) can use it.
"""

from __future__ import annotations

import dataclasses
import os
import select
import socket
import struct
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

BUS_NAME = "org.tunlab1"

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


class Writer:
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
    writer = Writer()
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
    writer = Writer()
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
        reply = self.call(BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                          [interface, name])
        assert reply.type == METHOD_RETURN, (reply.error_name, reply.error_message)
        return unwrap(reply.body[0])

