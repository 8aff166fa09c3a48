"""The whole nets that :mod:`benchmarks.networks` runs: the original's cfg pairs, parsed by the
port's parser, and random batches of their shapes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from archive import ORIGINAL

NETS = {  # name: (layer def, layer params, number of classes), in original/alexnet-2012
    "layers-80sec": ("example-layers/layers-80sec.cfg", "example-layers/layer-params-80sec.cfg", 10),
    "conv-local-13pct": ("example-layers/layers-conv-local-13pct.cfg",
                         "example-layers/layer-params-conv-local-13pct.cfg", 10),
    "layers-145": ("layers/layers-145.cfg", "layers/layer-params-145.cfg", 1000),
}
# Not layers-18pct: its rnorm sections say sizeX where the 2012 parser (layer.py) reads size, so
# the release itself cannot parse it; conv-local-13pct is the other CIFAR net the issue names.


def release_files(name: str) -> tuple[Path, Path, int] | None:
    """The cfg pair of ``name`` in original/alexnet-2012, or None when it is not fetched."""
    d, p, nc = NETS[name]
    root = ORIGINAL / "alexnet-2012"
    if not (root / d).is_file() or not (root / p).is_file():
        return None
    return root / d, root / p, nc


def random_batch(dims: dict, nc: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """Standard normal images and uniform labels: [(D, n), (1, n)] float32, the port's layout."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((dims[0], n), dtype=np.float32),
            rng.integers(0, nc, size=(1, n)).astype(np.float32)]
