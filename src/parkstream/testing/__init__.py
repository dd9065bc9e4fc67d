"""Test support for parkstream and projects testing against it.

:mod:`parkstream.testing.fixtures` is a pytest plugin providing the services
harness as fixtures; enable it in a ``conftest.py`` with
``pytest_plugins = ["parkstream.testing.fixtures"]``.
"""
