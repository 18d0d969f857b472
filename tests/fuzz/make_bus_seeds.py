#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_bus_options (corpus/fuzz_bus_options/) in the input format
described at the top of fuzz_bus_options.cpp: D-Bus calls as a client such as busctl or
tunlabctl would make them, valid ones and refused ones. Run it after changing that format."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "fuzz_bus_options")


def string(text):
    data = text.encode()
    assert len(data) < 0x80, text
    return bytes([len(data)]) + data


def boolean(value):
    return b"\x01" if value else b"\x00"


def count(n):
    assert n < 16
    return bytes([n])


def integer(value, size, signed):
    return b"\x00" + value.to_bytes(size, "big", signed=signed)


# Variants, by kind number.
def S(text): return b"\x00" + string(text)
def B(value): return b"\x01" + boolean(value)
def Y(value): return b"\x02" + integer(value, 1, False)
def Q(value): return b"\x03" + integer(value, 2, False)
def U(value): return b"\x04" + integer(value, 4, False)
def T(value): return b"\x05" + integer(value, 8, False)
def N(value): return b"\x06" + integer(value, 2, True)
def I(value): return b"\x07" + integer(value, 4, True)
def X(value): return b"\x08" + integer(value, 8, True)
def AS(items): return b"\x09" + count(len(items)) + b"".join(string(i) for i in items)
def V(inner): return b"\x0a" + inner
def AV(items): return b"\x0b" + count(len(items)) + b"".join(items)
def ASV(options): return b"\x0c" + opts(options)
def AASV(maps): return b"\x0d" + count(len(maps)) + b"".join(opts(m) for m in maps)
def D(value): return b"\x0e" + struct.pack(">d", value)
def O(path): return b"\x0f" + string(path)
def AO(paths): return b"\x10" + count(len(paths)) + b"".join(string(p) for p in paths)
def AY(data): return b"\x12" + bytes([len(data)]) + data


def opts(options):
    return count(len(options)) + b"".join(string(k) + v for k, v in options.items())


def create_tunnel(name, options):
    head = b"\x01" if name == "tun0" else b"\x00" + string(name)
    return b"\x00" + head + opts(options)


def add_peer(endpoint, ipv6_listen, options):
    return b"\x01" + string(endpoint) + boolean(ipv6_listen) + opts(options)


def remove_peer(tunnel, peer_id, path):
    return b"\x02" + string(tunnel) + integer(peer_id, 8, False) + string(path)


SEEDS = {
    # The README's example configuration, as tunlabctl sends it.
    "create_readme_example": create_tunnel("tun0", {
        "interface": S("tun0"), "mode": S("tun"), "protocol": S("plain"),
        "addresses": AS(["192.168.53.99/24", "fd00:53::99/64"]), "mtu": U(1472),
        "listen_address": S("::"), "listen_port": Q(0), "learn_peers": B(True),
        "max_learned_peers": U(1024), "learned_peer_timeout": U(180),
        "routes": AS(["192.168.60.0/24"]),
        "peers": AASV([{"endpoint": S("10.9.0.11:9090"),
                        "allowed_ips": AS(["192.168.60.0/24", "192.168.53.0/24"]),
                        "keepalive": U(25)}]),
    }),
    # The lab's server in TAP mode.
    "create_tap_server": create_tunnel("lab-server", {
        "mode": S("tap"), "interface": S("tap%d"), "addresses": AS(["192.168.53.11/24"]),
        "listen_address": S("0.0.0.0"), "listen_port": Q(9090), "max_learned_peers": U(16),
    }),
    # busctl's habits: signed integers, peers as av of a{sv}, a variant in a variant.
    "create_busctl_types": create_tunnel("tun0", {
        "mtu": I(1400), "listen_port": I(9090), "learned_peer_timeout": X(60),
        "peers": AV([ASV({"endpoint": S("[fd00:9::11]:9090"), "allowed_ips": AS(["::/0"]),
                          "keepalive": N(10)})]),
        "learn_peers": V(B(False)),
    }),
    "create_nested_variant": create_tunnel("tun0", {"mtu": V(V(U(1400)))}),
    # Refused: a double, bytes, a path that is no prefix, a negative number, an unknown key.
    "create_refused_double": create_tunnel("tun0", {"mtu": D(1400.0)}),
    "create_refused_bytes": create_tunnel("tun0", {"interface": AY(b"tun0")}),
    "create_refused_object_path_route": create_tunnel("tun0", {"routes": AO(["/org/tunlab1"])}),
    "create_refused_negative": create_tunnel("tun0", {"listen_port": I(-1)}),
    "create_refused_unknown_key": create_tunnel("tun0", {"mtus": U(1400)}),
    "create_refused_name": create_tunnel("bad name!", {}),
    # AddPeer, as `tunlabctl add-peer 10.9.0.11:9090 --allowed-ips ... --keepalive 25`.
    "add_peer_lab": add_peer("10.9.0.11:9090", True, {
        "allowed_ips": AS(["192.168.60.0/24"]), "keepalive": U(25)}),
    "add_peer_ipv6": add_peer("[fd00:9::11]:9090", True, {"allowed_ips": AS(["fd00:60::/64"])}),
    "add_peer_ipv6_on_ipv4": add_peer("[fd00:9::11]:9090", False, {}),
    "add_peer_learned": add_peer("", False, {"allowed_ips": AS(["192.168.50.0/24"])}),
    "add_peer_unknown_option": add_peer("10.9.0.11:9090", True, {"endpoint": S("10.9.0.12:9090")}),
    # RemovePeer paths.
    "remove_peer": remove_peer("tun0", 1, "/org/tunlab1/tunnel/tun0/peer/1"),
    "remove_peer_escaped": remove_peer("my-vpn", 7, "/org/tunlab1/tunnel/my_2dvpn/peer/7"),
    "remove_peer_other_tunnel": remove_peer("tun0", 3, "/org/tunlab1/tunnel/tun1/peer/3"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as output:
            output.write(data)
    print(f"wrote {len(SEEDS)} seeds to {OUT}")


if __name__ == "__main__":
    main()
