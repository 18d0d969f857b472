"""Every method of every interface tunlabd's objects expose (read from their introspection data,
not from a list kept by hand), called with the largest arguments the bus passes on.

Two halves:
- in the test process: `introspected_calls()` walks the objects and lists the calls to make;
- as another user: `python3 -m harness.bus_sweep ADDRESS` (process.harness_program) runs under
  setpriv, reads one call per line on stdin (JSON: path, interface, member, signature, shape),
  builds its arguments itself (so that 32 MiB never crosses a pipe), sends it with dbus_wire's
  client and prints one JSON line per reply: the outcome, and the length and start of the
  error message.

Shapes: "long" gives every string, object path, array and dictionary argument one element as
long as the message can hold (the budget split between them); "many" fills arrays and
dictionaries with as many of the smallest elements as fit. Strings are control characters
(\\x01), which an error message quoting them must escape. Numbers are their type's largest.
"""

from __future__ import annotations

import json
import struct
import sys
import xml.etree.ElementTree as ElementTree
from typing import Any

from harness.dbus_wire import (BUS_NAME, METHOD_CALL, BusClosed, BusConnection, Variant, Writer,
                              encode_message, method_call_fields, split_signature)

# dbus-daemon's max_message_size, the default of Debian's system bus too.
BUS_MESSAGE_LIMIT = 32 * 1024 * 1024
SHAPES = ("long", "many")

_LARGEST = {"y": 0xFF, "b": 1, "n": 0x7FFF, "q": 0xFFFF, "i": 0x7FFFFFFF, "u": 0xFFFFFFFF,
            "x": 2**63 - 1, "t": 2**64 - 1, "d": 1.7976931348623157e308}


# ── the calls to make (test process) ──────────────────────────────────────────────────────


def introspected_calls(client, paths: list[str]) -> list[dict[str, Any]]:
    """One call per (object, interface, method, shape), from each object's introspection
    data, plus a Get of every property and a GetAll of every interface: what a caller can
    ask of tunlabd."""
    calls = []
    for path in paths:
        xml = client.call(path, "org.freedesktop.DBus.Introspectable", "Introspect")
        for interface in ElementTree.fromstring(xml).iter("interface"):
            name = interface.get("name")
            for method in interface.iter("method"):
                signature = "".join(arg.get("type") for arg in method.iter("arg")
                                    if arg.get("direction", "in") == "in")
                for shape in SHAPES if signature else ("long",):
                    calls.append({"path": path, "interface": name, "member": method.get("name"),
                                  "signature": signature, "shape": shape})
            for prop in interface.iter("property"):
                calls.append({"path": path, "interface": "org.freedesktop.DBus.Properties",
                              "member": "Get", "signature": "ss",
                              "args": [name, prop.get("name")]})
            calls.append({"path": path, "interface": "org.freedesktop.DBus.Properties",
                          "member": "GetAll", "signature": "s", "args": [name]})
    return calls


# ── building the arguments (other user) ─────────────────────────────────────────────────


def _is_variable(signature: str) -> bool:
    return signature[0] in "sogav"


def _write_long(writer: Writer, signature: str, size: int) -> None:
    """One argument whose variable part is `size` bytes long."""
    code = signature[0]
    if code in _LARGEST:
        writer.write(signature, _LARGEST[code])
    elif code == "s":
        writer.write("s", "\x01" * size)
    elif code == "o":
        writer.write("o", "/" + "a" * max(size - 1, 1))
    elif code == "g":
        writer.write("g", "s")  # a signature is at most 255 bytes: nothing to make long
    elif code == "v":
        writer.write("v", Variant("s", "\x01" * size))
    elif signature == "a{sv}":
        writer.write(signature, {"\x01" * size: Variant("s", "\x01")})
    elif code == "a":
        element = signature[1:]
        if element in ("s", "o"):
            writer.write(signature, ["\x01" * size if element == "s" else "/" + "a" * size])
        else:
            writer.write(signature, [])
    else:
        raise ValueError(f"no long form for {signature!r}")


def _write_many(writer: Writer, signature: str, size: int) -> None:
    """One argument that holds as many of the smallest elements as fit in `size` bytes;
    written as bytes directly, since millions of elements through the generic writer would
    take minutes."""
    if signature == "as":
        count = size // 8
        writer.pad(4)
        # Each "" is a length and a NUL, padded to 4 for the next one; the last one unpadded.
        writer.buffer += struct.pack("<I", count * 8 - 3) + b"\0" * (count * 8 - 3)
    elif signature == "ao":
        count = size // 8
        writer.pad(4)
        writer.buffer += struct.pack("<I", count * 8 - 2) + \
            b"\x01\0\0\0/\0\0\0" * (count - 1) + b"\x01\0\0\0/\0"
    elif signature == "a{sv}":
        # Entries of 16 bytes: a 6-character key, the signature "y", one byte, padding.
        count = min(size // 16, 16**6)
        writer.pad(4)
        writer.buffer += struct.pack("<I", count * 16 - 1)
        writer.pad(8)
        writer.buffer += b"".join(b"\x06\0\0\0" + b"%06x" % n + b"\0\x01y\0\0\0"
                                  for n in range(count))[:-1]
    else:
        _write_long(writer, signature, size)


def build_body(signature: str, shape: str, budget: int, first_extra: int = 0) -> bytes:
    """The arguments, their variable parts sharing `budget` bytes (the first one
    `first_extra` more)."""
    members = split_signature(signature)
    variable = [member for member in members if _is_variable(member)]
    share = budget // max(len(variable), 1)
    writer = Writer()
    extra = first_extra
    for member in members:
        size = share + (extra if _is_variable(member) else 0)
        if _is_variable(member):
            extra = 0
        if shape == "many" and member.startswith("a"):
            _write_many(writer, member, size)
        else:
            _write_long(writer, member, size)
    return bytes(writer.buffer)


def build_call(serial: int, path: str, interface: str, member: str, signature: str,
               shape: str) -> bytes:
    """The method call, as close below BUS_MESSAGE_LIMIT as its elements allow: the largest
    message the bus passes on (it drops a client that sends a larger one)."""
    fields = method_call_fields(BUS_NAME, path, interface, member, signature)
    header = len(encode_message(METHOD_CALL, serial, fields, b""))
    budget = BUS_MESSAGE_LIMIT - header
    # Each element and its length field take a little more than its content: shrink the
    # shares until the body fits, then give the first argument what is left.
    share_budget = budget
    body = build_body(signature, shape, share_budget)
    while len(body) > budget:
        share_budget -= len(body) - budget + 64
        body = build_body(signature, shape, share_budget)
    for _ in range(4):
        attempt = build_body(signature, shape, share_budget, budget - len(body))
        if len(attempt) <= budget:
            body = attempt
            break
        budget_over = len(attempt) - budget
        attempt = build_body(signature, shape, share_budget, budget - len(body) - budget_over)
        if len(attempt) <= budget:
            body = attempt
            break
    return encode_message(METHOD_CALL, serial, fields, body)


# ── the program (other user) ────────────────────────────────────────────────────────────


class _Caller:
    """A connection that comes back after the bus drops it."""

    def __init__(self, address: str):
        self.address = address
        self.connection: BusConnection | None = None

    def call(self, call: dict[str, Any]) -> dict[str, Any]:
        if self.connection is None:
            self.connection = BusConnection(self.address, timeout=120)
        connection = self.connection
        if "args" in call:
            serial = connection.send_call(BUS_NAME, call["path"], call["interface"],
                                          call["member"], call["signature"], call["args"])
        else:
            serial = connection.next_serial()
            connection.send_bytes(build_call(serial, call["path"], call["interface"],
                                             call["member"], call["signature"],
                                             call["shape"]))
        try:
            reply = connection.wait_reply(serial)
        except BusClosed as closed:
            self.connection = None
            return {"outcome": "closed", "why": str(closed)}
        message = reply.error_message
        return {"outcome": reply.outcome, "message_length": len(message),
                "message_head": message[:200]}


def main(argv: list[str]) -> int:
    caller = _Caller(argv[1])
    for line in sys.stdin:
        print(json.dumps(caller.call(json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
