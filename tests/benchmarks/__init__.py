"""Tests of benchmarks/: the PyTorch twin and the GPU script (no timings here)."""
