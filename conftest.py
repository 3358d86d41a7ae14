"""How pytest-xdist shares the tests among workers, for every run inside the repository, whatever paths it is given
(tests/conftest.py, which holds the shared fixtures, loads only for runs under tests/)."""

import pytest


def worker_scope(nodeid: str) -> str:
    """The unit of work a worker takes whole: all the notebooks together, otherwise one test file."""
    return "notebooks" if nodeid.startswith("notebooks/") else nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called only when pytest runs with -n
def pytest_xdist_make_scheduler(config, log):
    """A file's tests run on one worker, where its module fixtures run once, and all the notebooks run on one worker,
    in order, because each reads what the ones before it saved. (xdist's own ``--dist loadgroup`` marks do not take
    under pytest 9, which no longer reads the test ids they rewrite.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_scope(nodeid)

    return ByFile(config, log)
