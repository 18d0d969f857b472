"""Fixtures for the lab-task scenarios: each test builds its own topology in fresh network
namespaces and everything is removed afterwards, pass or fail (see labkit.py)."""

import pytest

import labkit


def pytest_collection_modifyitems(config, items):
    reason = labkit.base.missing_prerequisite()
    if reason is None:
        missing = labkit.missing_tools("socat", "tcpdump")
        reason = f"needs {', '.join(missing)} in PATH" if missing else None
    if reason is not None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"lab tests: {reason}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Remember the test body's outcome so that fixtures can tell at teardown.
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.test_body_passed = report.passed


@pytest.fixture
def tunlabd():
    """The binaries under test. Missing ones are a failure, not a skip: a run that silently
    tested nothing must not look green."""
    for path in (labkit.base.tunlabd_path(), labkit.tunlabctl_path()):
        if not path.is_file():
            pytest.fail(f"{path} not found: build it (cmake --build --preset debug) or point "
                        f"TUNLABD / TUNLABCTL at it")
    return labkit.base.tunlabd_path()


@pytest.fixture
def make_lab(request, tmp_path, tunlabd):
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
    """BRIEF §2's topology: U 10.9.0.5, U2 10.9.0.6, server-router 10.9.0.11 / 192.168.60.11,
    V 192.168.60.5; IPv6 off, so that counters see only the test's own packets."""
    return make_lab()
