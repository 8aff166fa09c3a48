"""Tests of port."""
