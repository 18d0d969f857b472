"""Fixtures of the integration tests: each test gets its own freshly built lab. The shared
hooks and the tunlabd/tunlabctl fixtures come from the harness's pytest plugin."""

import pytest

from harness.lab import Lab

pytest_plugins = ["harness.plugin"]


@pytest.fixture
def lab(request, tmp_path, tunlabd):
    """The lab's topology (docs/lab.md) in private namespaces, removed after the test whatever happens.
    After a passing test every daemon still running must also shut down cleanly (SIGTERM →
    exit 0, devices removed). Daemon logs stay under tmp_path for post-mortems."""
    with Lab(tmp_path) as the_lab:
        yield the_lab
        if getattr(request.node, "test_body_passed", False):
            the_lab.stop_daemons()
