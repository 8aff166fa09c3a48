"""Tests of port.cudaconv2."""
