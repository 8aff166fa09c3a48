"""Benchmarks of the port (``python -m benchmarks``, ``make bench``); timings live here, never in tests.

- :mod:`benchmarks.kernels`: the cudaconv2 kernels of the 145 net (conv1, conv2, pool, cmrnorm),
  forward and backward at N = 128, the port against PyTorch's CPU build on the same inputs;
- :mod:`benchmarks.networks` (``python -m benchmarks.networks``): whole nets of the original's
  cfg files (:mod:`benchmarks.nets`), the port against its PyTorch twin
  (:mod:`benchmarks.torchnet`) side by side: training and inference images/s, their ratio,
  peak memory, thread counts, and a per-layer profile of the port's training step.

Results go to stdout as tables and to ``benchmarks/results/*.json`` (git-ignored).
"""
