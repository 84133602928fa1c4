"""Helpers shared by the test suites and the benchmarks.

Test modules import helpers from here, never from one another; shared pytest fixtures
are in :mod:`tests.support.fixtures`, registered for every suite by ``tests/conftest.py``.
Modules that ``bench/`` imports need no pytest.
"""
