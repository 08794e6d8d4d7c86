"""Fixtures for the emulated Elk board (pytest plugin loaded by tests/conftest.py)."""
