"""Call storms: many D-Bus method calls from several client processes at once, each its own
dbus_wire connection pipelining its share, every reply checked against what it must be."""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

from harness.dbus_wire import BUS_NAME, BusConnection, Message


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
