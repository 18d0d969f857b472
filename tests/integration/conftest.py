"""Fixtures for the lab tests: each test gets its own freshly built topology."""

import pytest

import lab as lab_module


def pytest_collection_modifyitems(config, items):
    reason = lab_module.missing_prerequisite()
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
    """The binary under test. A missing binary is a failure, not a skip: a run that
    silently tested nothing must not look green."""
    path = lab_module.tunlabd_path()
    if not path.is_file():
        pytest.fail(f"tunlabd not found at {path}: build it (cmake --build --preset debug) "
                    f"or point TUNLABD at it")
    return path


@pytest.fixture
def tunlabctl():
    """The CLI under test (TUNLABCTL, else next to tunlabd in its build tree); missing is a
    failure, as for tunlabd."""
    path = lab_module.tunlabctl_path()
    if not path.is_file():
        pytest.fail(f"tunlabctl not found at {path}: build it (cmake --build --preset debug) "
                    f"or point TUNLABCTL at it")
    return path


@pytest.fixture
def lab(request, tmp_path, tunlabd):
    """The BRIEF §2 topology in private namespaces, removed after the test whatever happens.
    After a passing test every daemon still running must also shut down cleanly (SIGTERM →
    exit 0, devices removed). Daemon logs stay under tmp_path for post-mortems."""
    with lab_module.Lab(tmp_path) as the_lab:
        yield the_lab
        if getattr(request.node, "test_body_passed", False):
            the_lab.stop_daemons()
