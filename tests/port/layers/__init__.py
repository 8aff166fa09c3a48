"""Tests of port.layers."""
