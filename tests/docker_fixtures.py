"""Fixtures for the Docker engine (pytest plugin loaded by tests/conftest.py)."""
