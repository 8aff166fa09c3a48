"""Tests of archive.sphinxext."""
