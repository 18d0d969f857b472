"""The pytest plugin both suites load (their conftest.py: `pytest_plugins = ["harness.plugin"]`):
the prerequisite skip, the record of each test body's outcome, and the binaries under test.

ini option `required_tools`: programs the suite needs in PATH besides the harness's own
(prerequisites.TOOLS); without one of them, every test is skipped with the reason.
"""

from __future__ import annotations

import pytest

from harness.prerequisites import TOOLS, missing_prerequisite, tunlabctl_path, tunlabd_path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("required_tools", type="args", default=[],
                  help=f"programs the suite needs in PATH besides {', '.join(TOOLS)}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_prerequisite(tuple(config.getini("required_tools")))
    if reason is not None:
        suite = config.rootpath.name
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"{suite} tests: {reason}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Remember the test body's outcome so that fixtures can tell at teardown
    # (request.node.test_body_passed): after a passing test, daemons must also stop cleanly.
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.test_body_passed = report.passed


def _binary(path, what: str):
    """A missing binary is a failure, not a skip: a run that silently tested nothing must not
    look green."""
    if not path.is_file():
        pytest.fail(f"{what} not found at {path}: build it (cmake --build --preset debug) "
                    f"or point {what.upper()} at it")
    return path


@pytest.fixture
def tunlabd():
    """The daemon under test (TUNLABD, else the debug build's)."""
    return _binary(tunlabd_path(), "tunlabd")


@pytest.fixture
def tunlabctl():
    """The CLI under test (TUNLABCTL, else next to tunlabd in its build tree)."""
    return _binary(tunlabctl_path(), "tunlabctl")
