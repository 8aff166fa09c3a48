"""Benchmarks of the port (``python -m benchmarks``, ``make bench``); timings live here, never in tests.

- :mod:`benchmarks.kernels`: the cudaconv2 kernels of the 145 net (conv1, conv2, pool, cmrnorm),
  forward and backward at N = 128, the port against PyTorch's CPU build on the same inputs;
- :mod:`benchmarks.nets`: forward + backward time per 128 images of the original's
  ``layers-80sec.cfg`` and ``layers-145.cfg`` on random data, and training images/s of the
  80sec net, through ``port.model.ConvNet``.

Results go to stdout as a table and to ``benchmarks/results/<UTC time>-<backend>.json`` (git-ignored).
"""
