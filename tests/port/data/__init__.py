"""Tests of port.data."""
