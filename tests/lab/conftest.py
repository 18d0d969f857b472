"""Fixtures for the lab-task scenarios: each test builds its own topology in fresh network
namespaces and everything is removed afterwards, pass or fail (see labkit.py). The shared
hooks and the tunlabd/tunlabctl fixtures come from the harness's pytest plugin."""

import pytest

import labkit

pytest_plugins = ["harness.plugin"]


@pytest.fixture
def make_lab(request, tmp_path, tunlabd, tunlabctl):
    """make_lab(Topology=labkit.TaskLab, ipv6=False): builds a topology, removed after the
    test whatever happens. After a passing test every daemon still running must also shut
    down cleanly (SIGTERM → exit 0, devices removed)."""
    labs = []

    def make(topology=labkit.TaskLab, **options):
        the_lab = topology(tmp_path / f"lab{len(labs)}", **options)
        the_lab.__enter__()
        labs.append(the_lab)
        return the_lab

    yield make
    try:
        if getattr(request.node, "test_body_passed", False):
            for the_lab in labs:
                the_lab.stop_daemons()
    finally:
        for the_lab in labs:
            the_lab.close()


@pytest.fixture
def lab(make_lab):
    """The lab's topology (docs/lab.md): U 10.9.0.5, U2 10.9.0.6, server-router 10.9.0.11 / 192.168.60.11,
    V 192.168.60.5; IPv6 off, so that counters see only the test's own packets."""
    return make_lab()
