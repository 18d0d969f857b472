"""WireGuard messages made and read in Python, for hostile tests: the four messages' layouts,
mac1/mac2 and cookie replies, a handshake initiator (Noise_IKpsk2, the first message only),
garbage of every kind, tunlabd's WireGuard drop reasons and datagram accounting, and Capture,
the UDP datagrams one interface of a lab host sees (an AF_PACKET socket), for replays.

Written from the protocol (/work/shared/WIREGUARD.md: whitepaper §5, wireguard-go), not from
tunlabd's code, with Python's hashlib (BLAKE2s: keyed, any digest size) and python3-cryptography
(X25519, ChaCha20-Poly1305; XChaCha20 is built from one ChaCha20 block, as HChaCha20 is).
Keys are bytes; the base64 form that `wg` prints converts with key_bytes().
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import socket
import struct
import time
from typing import Iterator

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.counters import RECEIVE_DROP_REASONS, SEND_DROP_REASONS
from harness.netns import socket_in_namespace

# ── the wire ─────────────────────────────────────────────────────────────────────────────

INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
INITIATION_SIZE = 148
RESPONSE_SIZE = 92
COOKIE_REPLY_SIZE = 64
TRANSPORT_HEADER_SIZE = 16
TAG_SIZE = 16
KEEPALIVE_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE   # the smallest transport message
MAC_SIZE = 16
# Where each handshake message's mac1 starts (mac2 follows it, to the end).
MAC1_OFFSET = {INITIATION: INITIATION_SIZE - 2 * MAC_SIZE, RESPONSE: RESPONSE_SIZE - 2 * MAC_SIZE}

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

# tunlabd's drop reasons of a wireguard tunnel's receive side (docs/dbus-api.md, "Counters"):
# the plain protocol's, which still apply to the packet inside, and the protocol's own.
WIREGUARD_DROP_REASONS = ("bad_message", "bad_mac", "unknown_index", "decrypt_failed", "replay",
                          "stale_timestamp", "rate_limited", "under_load", "no_session")
RECEIVE_DROPS = RECEIVE_DROP_REASONS + tuple(reason for reason in WIREGUARD_DROP_REASONS
                                             if reason not in RECEIVE_DROP_REASONS)
SEND_DROPS = SEND_DROP_REASONS + tuple(reason for reason in ("flood_limit", "no_session_out")
                                       if reason not in SEND_DROP_REASONS)


def datagrams_accounted(counters: dict[str, int]) -> int:
    """The documented identity of a wireguard tunnel (docs/dbus-api.md): every datagram read
    is rx_packets + rx_keepalives + rx_handshakes + the sum of the receive-side drops."""
    return (counters["rx_packets"] + counters["rx_keepalives"] + counters["rx_handshakes"]
            + sum(counters[f"drop_{reason}"] for reason in RECEIVE_DROPS))


def message_type(datagram: bytes) -> int | None:
    """The message a datagram is (1-4), or None: not a WireGuard message (wrong size for its
    type, reserved bytes set, unknown type)."""
    if len(datagram) < 4 or datagram[1:4] != b"\0\0\0":
        return None
    sizes = {INITIATION: INITIATION_SIZE, RESPONSE: RESPONSE_SIZE,
             COOKIE_REPLY: COOKIE_REPLY_SIZE}
    kind = datagram[0]
    if kind in sizes:
        return kind if len(datagram) == sizes[kind] else None
    if kind == TRANSPORT:
        return kind if len(datagram) >= KEEPALIVE_SIZE else None
    return None


def sender_index(message: bytes) -> int:
    """The index the sender of an initiation or response chose for itself."""
    return struct.unpack_from("<I", message, 4)[0]


def receiver_index(message: bytes) -> int:
    """The index a response, cookie reply or transport message is addressed to."""
    offset = 8 if message[0] == RESPONSE else 4
    return struct.unpack_from("<I", message, offset)[0]


def header(kind: int) -> bytes:
    return struct.pack("<I", kind)   # the type, then three zero bytes


# ── primitives (whitepaper §5.4) ─────────────────────────────────────────────────────────

def key_bytes(base64_key: str) -> bytes:
    key = base64.b64decode(base64_key, validate=True)
    assert len(key) == 32, base64_key
    return key


def blake2s_hash(*parts: bytes) -> bytes:
    digest = hashlib.blake2s()
    for part in parts:
        digest.update(part)
    return digest.digest()


def mac(key: bytes, data: bytes) -> bytes:
    """MAC: keyed BLAKE2s with a 16-byte output (not a truncated 32-byte one)."""
    return hashlib.blake2s(data, key=key, digest_size=MAC_SIZE).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2s).digest()


def kdf(chaining_key: bytes, data: bytes, outputs: int) -> list[bytes]:
    """HKDF over HMAC-BLAKE2s with empty info: `outputs` 32-byte keys."""
    secret = _hmac(chaining_key, data)
    keys, previous = [], b""
    for number in range(1, outputs + 1):
        previous = _hmac(secret, previous + bytes([number]))
        keys.append(previous)
    return keys


def aead_seal(key: bytes, counter: int, plaintext: bytes, associated: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(struct.pack("<4xQ", counter), plaintext, associated)


def _hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 from one ChaCha20 block: the block is the rounds' output plus the input
    state, so subtracting the constants and the nonce words leaves HChaCha20's words."""
    # cryptography's 16-byte ChaCha20 nonce is the state's last four words (counter ‖ nonce).
    block = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(bytes(64))
    words = struct.unpack("<16I", block)
    constants = struct.unpack("<4I", b"expand 32-byte k")
    inputs = struct.unpack("<4I", nonce16)
    out = [(words[i] - constants[i]) & 0xFFFFFFFF for i in range(4)]
    out += [(words[12 + i] - inputs[i]) & 0xFFFFFFFF for i in range(4)]
    return struct.pack("<8I", *out)


def xaead_open(key: bytes, nonce24: bytes, sealed: bytes, associated: bytes) -> bytes:
    """XChaCha20-Poly1305 decryption (raises cryptography's InvalidTag if forged)."""
    subkey = _hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).decrypt(b"\0" * 4 + nonce24[16:], sealed, associated)


def public_key(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def dh(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(public))


def tai64n(unix_seconds: float | None = None) -> bytes:
    """A TAI64N timestamp (12 bytes): big-endian 2^62 + 10 + seconds, then nanoseconds."""
    now = time.time() if unix_seconds is None else unix_seconds
    seconds = int(now)
    return struct.pack(">QI", (1 << 62) + 10 + seconds, int((now - seconds) * 1e9))


# ── mac1, mac2, cookies (§5.4.4, §5.4.7) ─────────────────────────────────────────────────

def mac1_key(responder_public: bytes) -> bytes:
    return blake2s_hash(LABEL_MAC1, responder_public)


def cookie_key(responder_public: bytes) -> bytes:
    return blake2s_hash(LABEL_COOKIE, responder_public)


def mac1_of(message: bytes) -> bytes:
    offset = MAC1_OFFSET[message[0]]
    return message[offset:offset + MAC_SIZE]


def with_macs(message: bytes, receiver_public: bytes, cookie: bytes | None = None) -> bytes:
    """An initiation or response with its mac1 (for `receiver_public`) and its mac2 (from
    `cookie`, or zeros) written over its last 32 bytes."""
    offset = MAC1_OFFSET[message[0]]
    body = message[:offset]
    mac1 = mac(mac1_key(receiver_public), body)
    mac2 = mac(cookie, body + mac1) if cookie is not None else bytes(MAC_SIZE)
    return body + mac1 + mac2


def random_initiation(responder_public: bytes, sender: int | None = None,
                      cookie: bytes | None = None) -> bytes:
    """An initiation with random contents but a valid mac1 (and a valid mac2 from `cookie`):
    it passes the cheap checks and costs the responder a Diffie-Hellman, unless the responder
    is under load and there is no cookie."""
    index = sender if sender is not None else int.from_bytes(os.urandom(4), "little")
    body = header(INITIATION) + struct.pack("<I", index) + os.urandom(INITIATION_SIZE - 8)
    return with_macs(body, responder_public, cookie)


def random_response(responder_public: bytes) -> bytes:
    """A response with random indices and contents but a valid mac1."""
    body = header(RESPONSE) + os.urandom(RESPONSE_SIZE - 4)
    return with_macs(body, responder_public)


def open_cookie_reply(reply: bytes, responder_public: bytes, answered: bytes) -> bytes:
    """The cookie inside a cookie reply to the handshake message `answered` (whose mac1 is the
    associated data). Raises InvalidTag if the reply is not one."""
    assert message_type(reply) == COOKIE_REPLY, reply.hex()
    return xaead_open(cookie_key(responder_public), reply[8:32], reply[32:64], mac1_of(answered))


# ── a handshake initiator (§5.4.2) ───────────────────────────────────────────────────────

INITIAL_CHAINING_KEY = blake2s_hash(CONSTRUCTION)
INITIAL_HASH = blake2s_hash(INITIAL_CHAINING_KEY, IDENTIFIER)
# Known answers (WIREGUARD.md): a typo in a label would fail here, not in a test.
assert INITIAL_CHAINING_KEY.hex().startswith("60e26dae"), INITIAL_CHAINING_KEY.hex()
assert INITIAL_HASH.hex().startswith("2211b361"), INITIAL_HASH.hex()


@dataclasses.dataclass
class Initiator:
    """The initiating side of a peer whose private key the test holds: makes genuine
    handshake initiations to `responder_public` (the first message; the test never needs the
    session)."""
    private: bytes
    responder_public: bytes

    def initiation(self, sender: int | None = None, timestamp: bytes | None = None,
                   cookie: bytes | None = None) -> bytes:
        """A valid initiation; `timestamp` (TAI64N, default now) lets a test send one that is
        older than the last, `cookie` puts a mac2 on it."""
        index = sender if sender is not None else int.from_bytes(os.urandom(4), "little")
        chaining_key = INITIAL_CHAINING_KEY
        hash_ = blake2s_hash(INITIAL_HASH, self.responder_public)
        ephemeral_private = os.urandom(32)   # X25519 clamps any 32 bytes into a key
        ephemeral = public_key(ephemeral_private)
        (chaining_key,) = kdf(chaining_key, ephemeral, 1)
        hash_ = blake2s_hash(hash_, ephemeral)
        chaining_key, key = kdf(chaining_key, dh(ephemeral_private, self.responder_public), 2)
        encrypted_static = aead_seal(key, 0, public_key(self.private), hash_)
        hash_ = blake2s_hash(hash_, encrypted_static)
        chaining_key, key = kdf(chaining_key, dh(self.private, self.responder_public), 2)
        encrypted_timestamp = aead_seal(key, 0, timestamp or tai64n(), hash_)
        body = (header(INITIATION) + struct.pack("<I", index) + ephemeral + encrypted_static
                + encrypted_timestamp + bytes(2 * MAC_SIZE))
        assert len(body) == INITIATION_SIZE
        return with_macs(body, self.responder_public, cookie)


# ── garbage ──────────────────────────────────────────────────────────────────────────────

def garbage(size: int, kind: int | None = None, reserved: bytes = b"\0\0\0",
            avoid_indices: frozenset[int] = frozenset()) -> bytes:
    """`size` random bytes; with `kind`, starting with that type byte and `reserved` as bytes
    1-3 (if `size` leaves room). Random receiver indices in `avoid_indices` (the responder's
    own, so that the outcome is certain) are redrawn."""
    while True:
        data = bytearray(os.urandom(size))
        if kind is not None:
            prefix = bytes([kind]) + reserved
            data[:min(size, 4)] = prefix[:size]
        elif size >= 4 and data[1:4] == b"\0\0\0":
            data[1] = 0xA5   # random bytes that happen to be a header would be a message
        if size < 8 or struct.unpack_from("<I", data, 4)[0] not in avoid_indices:
            return bytes(data)


# ── capturing what a host sees ───────────────────────────────────────────────────────────

ETH_P_ALL = 0x0003    # every protocol: only such a socket sees what the host sends too
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33   # <asm-generic/socket.h>; Python's socket module does not name it


@dataclasses.dataclass(frozen=True)
class Datagram:
    source: tuple[str, int]
    destination: tuple[str, int]
    payload: bytes
    outgoing: bool      # sent by the capturing host (else received)


class Capture:
    """The IPv4 UDP datagrams (unfragmented) that cross `interface` of namespace `ns`, both
    ways, read from an AF_PACKET socket's buffer: start it before the traffic, read it after
    (the buffer holds about 16 MiB: plenty for handshakes and pings, not for a flood, so
    capture on an interface the flood does not cross). A datagram the kernel sent as one GSO
    batch is seen whole, several messages in one payload."""

    def __init__(self, ns: str, interface: str = "eth0"):
        self.sock = socket_in_namespace(ns, socket.AF_PACKET, socket.SOCK_DGRAM,
                                        socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        self.sock.bind((interface, ETH_P_ALL))
        self.sock.setblocking(False)
        self.interface = interface
        self._seen: list[Datagram] = []

    def _drain(self) -> Iterator[Datagram]:
        while True:
            try:
                packet, address = self.sock.recvfrom(1 << 16)
            except BlockingIOError:
                return
            if (address[0] != self.interface or address[1] != ETH_P_IP or len(packet) < 28
                    or packet[9] != socket.IPPROTO_UDP):
                continue
            header_length = (packet[0] & 0x0F) * 4
            flags_fragment = struct.unpack_from("!H", packet, 6)[0]
            if flags_fragment & 0x3FFF:    # a fragment: not a whole datagram
                continue
            total = struct.unpack_from("!H", packet, 2)[0]
            source_port, destination_port, length = struct.unpack_from("!HHH", packet,
                                                                       header_length)
            payload = packet[header_length + 8:min(total, header_length + length)]
            yield Datagram((socket.inet_ntoa(packet[12:16]), source_port),
                           (socket.inet_ntoa(packet[16:20]), destination_port), payload,
                           address[2] == PACKET_OUTGOING)

    def datagrams(self) -> list[Datagram]:
        """Everything captured so far (since the capture started)."""
        self._seen.extend(self._drain())
        return list(self._seen)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
