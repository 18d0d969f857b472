"""A small D-Bus client of org.tunlab1 for the tests, on python3-dbus (Debian: python3-dbus).

Why python3-dbus and not only tunlabctl/busctl: the tests must see the exact D-Bus error NAME
of every refusal. `busctl call` prints only the error's message, and tunlabctl cannot send
what a test needs to send on purpose (an option of the wrong D-Bus type, an unknown option
key, a peer path that was never handed out, the `interface` option). python3-dbus gives the
name (`DBusException.get_dbus_name()`), sends any typed value, and is cheap enough per call to
measure the daemon's reply latency in-process.

Two ways to use it:
- in the test process (root): `Client(address)`;
- as a program (process.harness_program), e.g. as another user under setpriv:
  `python3 -m harness.dbus_client ADDRESS`, reading a JSON list of calls on stdin and printing
  a JSON list of outcomes (see `main`), or
  `python3 -m harness.dbus_client ADDRESS --load TUNNEL_PATH ROUTE...`, the load generator of
  the no-stall test (see `_load`).

Typed values in JSON: an option map is {"key": [TYPE, value]}, e.g. {"listen_port": ["q",
9090]} or {"listen_port": ["s", "9090"]}; TYPE is a D-Bus signature of a basic type or "as".
"""

from __future__ import annotations

import json
import select
import sys
import time
from typing import Any

try:
    import dbus
except ImportError as missing:  # a failure, not a skip: these tests must not silently vanish
    raise ImportError("the D-Bus tests need python3-dbus for /usr/bin/python3 "
                      "(apt install python3-dbus; scripts/install-deps)") from missing

BUS_NAME = "org.tunlab1"
MANAGER_PATH = "/org/tunlab1"
MANAGER = "org.tunlab1.Manager"
TUNNEL = "org.tunlab1.Tunnel"
PEER = "org.tunlab1.Peer"
PROPERTIES = "org.freedesktop.DBus.Properties"

_TYPES = {
    "s": dbus.String, "o": dbus.ObjectPath, "b": dbus.Boolean, "y": dbus.Byte,
    "n": dbus.Int16, "q": dbus.UInt16, "i": dbus.Int32, "u": dbus.UInt32,
    "x": dbus.Int64, "t": dbus.UInt64, "d": dbus.Double,
}


def typed(signature: str, value: Any) -> Any:
    """`value` as a python3-dbus value of D-Bus type `signature`."""
    if signature in _TYPES:
        return _TYPES[signature](value)
    if signature.startswith("a") and signature[1:] in _TYPES:
        return dbus.Array([typed(signature[1:], item) for item in value], signature=signature[1:])
    raise ValueError(f"unsupported type {signature}")


def options(typed_values: dict[str, tuple[str, Any]] | None = None) -> dbus.Dictionary:
    """An a{sv} option map from {"key": (TYPE, value)}."""
    return dbus.Dictionary({key: typed(signature, value)
                            for key, (signature, value) in (typed_values or {}).items()},
                           signature="sv")


def plain(value: Any) -> Any:
    """python3-dbus values as plain JSON-able Python values."""
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.Dictionary, dict)):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (dbus.Array, dbus.Struct, list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return value


class Client:
    def __init__(self, address: str):
        self.bus = dbus.bus.BusConnection(address)

    def close(self) -> None:
        self.bus.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, path: str, interface: str, method: str, signature: str = "", *args: Any,
             timeout: float = 10.0) -> Any:
        """The method's reply (plain values); raises dbus.exceptions.DBusException."""
        reply = self.bus.call_blocking(BUS_NAME, path, interface, method, signature, args,
                                       timeout=timeout)
        return plain(reply)

    def error(self, path: str, interface: str, method: str, signature: str = "", *args: Any
              ) -> tuple[str, str]:
        """(error name, message) of a call that must fail; fails the test if it succeeds."""
        try:
            reply = self.call(path, interface, method, signature, *args)
        except dbus.exceptions.DBusException as error:
            return error.get_dbus_name(), error.get_dbus_message()
        raise AssertionError(f"{interface}.{method}{args} succeeded ({reply}), expected an error")

    def get(self, path: str, interface: str, name: str) -> Any:
        return self.call(path, PROPERTIES, "Get", "ss", interface, name)

    def get_all(self, path: str, interface: str) -> dict[str, Any]:
        return self.call(path, PROPERTIES, "GetAll", "s", interface)

    def snapshot(self) -> dict[str, Any]:
        """Everything the daemon exposes except counters and timestamps, by object path: what
        a refused change must leave exactly as it was."""
        volatile = {"Counters", "LastReceive", "LastSend"}
        state: dict[str, Any] = {MANAGER_PATH: self.get_all(MANAGER_PATH, MANAGER)}
        for tunnel in state[MANAGER_PATH]["Tunnels"]:
            properties = self.get_all(tunnel, TUNNEL)
            state[tunnel] = {k: v for k, v in properties.items() if k not in volatile}
            for peer in properties["Peers"]:
                state[peer] = {k: v for k, v in self.get_all(peer, PEER).items()
                               if k not in volatile}
        return state


def get_latencies(address: str, path: str, interface: str, name: str, count: int,
                  interval: float) -> list[float]:
    """Round-trip times (seconds) of `count` Properties.Get calls, one every `interval`."""
    with Client(address) as client:
        client.get(path, interface, name)  # connection set up, name resolved
        times = []
        for _ in range(count):
            start = time.perf_counter()
            client.get(path, interface, name)
            times.append(time.perf_counter() - start)
            time.sleep(interval)
        return times


# ── as a program (for other users, and for load from several processes) ─────────────────


def _run_calls(address: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call: {"path", "interface", "method", "signature", "args"}; an argument that is a
    JSON object is an option map of [TYPE, value] pairs, see the module docstring."""
    outcomes = []
    with Client(address) as client:
        for call in calls:
            args = [options(arg) if isinstance(arg, dict) else arg
                    for arg in call.get("args", [])]
            try:
                reply = client.call(call["path"], call["interface"], call["method"],
                                    call.get("signature", ""), *args)
                outcomes.append({"reply": reply})
            except dbus.exceptions.DBusException as error:
                outcomes.append({"error": error.get_dbus_name(),
                                 "message": error.get_dbus_message()})
    return outcomes


def _load(address: str, tunnel_path: str, routes: list[str]) -> dict[str, Any]:
    """Get(Counters) as fast as the daemon answers, and every 25th call one route change
    (each of `routes` added, then each removed again, over and over), until told to stop.
    Prints "ready" once connected, starts at the first line on stdin ("go", so that several
    loaders start together) and stops at the next line or end of input."""
    with Client(address) as client:
        client.get(tunnel_path, TUNNEL, "Counters")
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.monotonic()
        gets = route_changes = 0
        slowest = 0.0
        pending, added = list(routes), []
        while not select.select([sys.stdin], [], [], 0)[0]:
            begin = time.perf_counter()
            client.get(tunnel_path, TUNNEL, "Counters")
            slowest = max(slowest, time.perf_counter() - begin)
            gets += 1
            if gets % 25 == 0 and routes:
                if pending:
                    route = pending.pop()
                    client.call(tunnel_path, TUNNEL, "AddRoute", "sa{sv}", route, options())
                    added.append(route)
                else:
                    client.call(tunnel_path, TUNNEL, "RemoveRoute", "s", added.pop())
                    if not added:
                        pending = list(routes)
                route_changes += 1
        for route in added:
            client.call(tunnel_path, TUNNEL, "RemoveRoute", "s", route)
        return {"gets": gets, "route_changes": route_changes + len(added),
                "seconds": time.monotonic() - started, "slowest_get_s": slowest}


def main(argv: list[str]) -> int:
    address = argv[1]
    if len(argv) > 2 and argv[2] == "--load":
        print(json.dumps(_load(address, argv[3], argv[4:])), flush=True)
        return 0
    print(json.dumps(_run_calls(address, json.load(sys.stdin))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
