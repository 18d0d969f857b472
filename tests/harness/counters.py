"""tunlabd's counters and status as the tests read them (docs/dbus-api.md, "Counters"): the
drop reasons, deltas between two readings, the accounting of every datagram received, and
the peers of a tunnel's status."""

from __future__ import annotations

from typing import Any

RECEIVE_DROP_REASONS = ("empty", "truncated", "bad_version", "bad_header", "bad_length",
                        "too_big", "bad_source", "unknown_peer", "peer_limit", "device_error")
SEND_DROP_REASONS = ("no_peer", "no_endpoint", "send_error", "bad_offload")


def counter_deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


def datagrams_accounted(counters: dict[str, int]) -> int:
    """What the daemon says it read from its socket: every datagram ends up delivered
    (rx_packets), as a keepalive, or in exactly one receive-side drop reason."""
    return (counters["rx_packets"] + counters["rx_keepalives"]
            + sum(counters[f"drop_{reason}"] for reason in RECEIVE_DROP_REASONS))


def peers_with_allowed_ip(tunnel: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [peer for peer in tunnel["peers"] if prefix in peer["allowed_ips"]]


def only_peer_with_allowed_ip(tunnel: dict[str, Any], prefix: str) -> dict[str, Any]:
    peers = peers_with_allowed_ip(tunnel, prefix)
    assert len(peers) == 1, f"expected exactly one peer for {prefix}, got {peers}"
    return peers[0]
