"""Watching a daemon's signals: `tunlabctl --json monitor` on its bus, read line by line as
it prints (Monitor), and subscribed_monitor(), which returns one once it provably receives
them. Every wait has a deadline; nothing sleeps."""

import json
import os
import select
import subprocess
import time

from harness.prerequisites import tunlabctl_path
from harness.process import WaitTimeout

SIGNAL_TIMEOUT = 5.0
MANAGER_PATH = "/org/tunlab1"


class Monitor:
    """`tunlabctl --json monitor` on one daemon's bus, read line by line as it prints."""

    def __init__(self, lab, daemon):
        self.proc = lab.spawn("s", [str(tunlabctl_path()), "--json", "monitor"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
                              env=daemon.bus.env())
        self._partial = b""
        self.lines = []      # every signal printed so far, parsed
        self._cursor = 0     # lines before it were passed over or returned by expect()

    def _read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not ready:
            return
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"tunlabctl monitor exited ({self.proc.wait()}): "
                                 f"{self._partial.decode(errors='replace')}")
        self._partial += chunk
        *complete, self._partial = self._partial.split(b"\n")
        self.lines += [json.loads(line) for line in complete if line.strip()]

    def expect(self, signal, path, arguments=None, timeout=SIGNAL_TIMEOUT):
        """The next signal `signal` from `path` (with `arguments` among its arguments) AFTER
        the one the previous expect() returned: tunlabd sends its signals in the order of
        the events, and the bus keeps one sender's order. Fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.lines)):
                line = self.lines[index]
                if (line["signal"] == signal and line["path"] == path
                        and (arguments or {}).items() <= line["arguments"].items()):
                    self._cursor = index + 1
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"no {signal} from {path} {arguments or ''} within "
                                  f"{timeout:g}s; saw: {json.dumps(self.lines, indent=1)}")
            self._read(remaining)

    def signals(self, name):
        return [line for line in self.lines if line["signal"] == name]

    def wait_for(self, predicate, what, timeout=SIGNAL_TIMEOUT):
        """The first signal printed so far or within `timeout` seconds for which
        `predicate(line)` holds, in any order relative to others (unlike expect(), which
        keeps order and moves the cursor): for signals whose relative order the daemon does
        not promise, e.g. the PropertiesChanged of two peers changed by one request."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if predicate(line):
                    return line
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"no signal {what} within {timeout:g}s; saw: "
                                  f"{json.dumps(self.lines, indent=1)}")
            self._read(remaining)


def subscribe(monitor, daemon):
    """Returns once the monitor provably receives signals. tunlabctl prints nothing when its
    match rule is in place, so create a throw-away tunnel until its TunnelAdded shows up (a
    signal sent before the rule existed is lost, hence the retry), then delete it: that also
    checks TunnelRemoved."""
    for _ in range(20):
        daemon.ctl("create", "probe")
        try:
            monitor.expect("TunnelAdded", MANAGER_PATH,
                           {"tunnel": "/org/tunlab1/tunnel/probe", "name": "probe"}, timeout=0.5)
            break
        except WaitTimeout:
            daemon.ctl("delete", "probe")
    else:
        raise AssertionError("tunlabctl monitor never saw a signal")
    daemon.ctl("delete", "probe")
    removed = monitor.expect("TunnelRemoved", MANAGER_PATH,
                             {"tunnel": "/org/tunlab1/tunnel/probe", "name": "probe"})
    assert removed["interface"] == "org.tunlab1.Manager", removed


def properties_changed(path, interface, name, value):
    """A predicate for Monitor.wait_for: PropertiesChanged of `path` with `name` = `value`."""
    def matches(line):
        arguments = line.get("arguments", {})
        return (line["signal"] == "PropertiesChanged" and line["path"] == path
                and arguments.get("interface") == interface
                and arguments.get("changed", {}).get(name, object()) == value)
    return matches


def subscribed_monitor(lab, daemon):
    """A Monitor of `daemon` that provably receives its signals (subscribe())."""
    monitor = Monitor(lab, daemon)
    subscribe(monitor, daemon)
    return monitor
