"""Data providers (the twins of r561 ``data.py`` and the 2012 ``convdata*.py``) and converters.

``dp_types`` maps each ``--data-provider`` string to its class, the twin of the registrations in
the 2012 ``convnet.py``; :func:`get_instance` looks a string up. ``python -m port.data`` runs the
converters (``convert.py``): the official CIFAR-10 release and a folder tree of JPEGs into the
batch layouts these providers read.
"""
from __future__ import annotations

from port.data.cifar import CIFARDataProvider, CroppedCIFARDataProvider
from port.data.jpeg import JPEGCroppedImageNetLogRegDP
from port.data.provider import (DataProvider, LabeledDataProvider, LabeledMemoryDataProvider,
                                dp_types, get_instance, not_ported)
from port.data.synthetic import DummyConvNetLogRegDP, SyntheticDataProvider


def _register() -> None:
    """Fill the registry: r561's own keys, then the keys the 2012 driver registers.

    Ports: cuda-convnet-r561/data.py:220-231 dp_types
    Ports: alexnet-2012/convnet.py:199-209 register_data_provider
    """
    dp_types.update({
        "default": DataProvider,
        "labeled": LabeledDataProvider,
        "labeled-memory": LabeledMemoryDataProvider,
        "dummy-lr-n": DummyConvNetLogRegDP,
        "inet-lr-cropped-jpeg": JPEGCroppedImageNetLogRegDP,
        "cifar": CIFARDataProvider,
        "cifar-cropped": CroppedCIFARDataProvider,
    })
    raw = "raw-pixel ImageNet batches (D×N arrays with 'wordpres'); the 2012 runs used the JPEG provider"
    not_ported.update({
        "inet-lr": raw,
        "inet-lr-cropped": raw,
        "inet-rs-lr-cropped": "broken in the release (get_cropped_data has the wrong signature)",
        "flickr-ce-cropped": "the Flickr tag data set is not public",
        "dummy-ce-n": "the cross-entropy dummy provider is not ported; use dummy-lr-n",
        "flatmem": "not ported; use cifar for flat in-memory batches",
        "memory": "not ported; use labeled-memory",
    })


_register()

__all__ = ["DataProvider", "LabeledDataProvider", "LabeledMemoryDataProvider", "CIFARDataProvider",
           "CroppedCIFARDataProvider", "JPEGCroppedImageNetLogRegDP", "SyntheticDataProvider",
           "DummyConvNetLogRegDP", "dp_types", "get_instance", "not_ported"]
