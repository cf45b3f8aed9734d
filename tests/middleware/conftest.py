"""The ``server`` fixture the docs' tests here use now lives in tests/conftest.py, shared with
the Messages and Tools docs' tests."""
