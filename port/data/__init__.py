"""Data providers (the twins of r561 ``data.py`` and the 2012 ``convdata*.py``) and converters.

``dp_types`` (a literal in ``provider.py``) maps each ``--data-provider`` string to its class, the
twin of the registrations in the 2012 ``convnet.py``; :func:`get_instance` looks a string up.
``python -m port.data`` runs the converters (``convert.py``): the official CIFAR-10 release and a
folder tree of JPEGs into the batch layouts these providers read.
"""
from __future__ import annotations

# provider.py first: it defines the base classes, then imports the modules whose providers
# subclass them, to list every provider in its one literal registry, dp_types.
from port.data.provider import (DataProvider, LabeledDataProvider,  # isort: skip
                                LabeledMemoryDataProvider, dp_types, get_instance, not_ported)
from port.data.cifar import CIFARDataProvider, CroppedCIFARDataProvider
from port.data.jpeg import JPEGCroppedImageNetLogRegDP
from port.data.synthetic import DummyConvNetLogRegDP, SyntheticDataProvider

__all__ = ["DataProvider", "LabeledDataProvider", "LabeledMemoryDataProvider", "CIFARDataProvider",
           "CroppedCIFARDataProvider", "JPEGCroppedImageNetLogRegDP", "SyntheticDataProvider",
           "DummyConvNetLogRegDP", "dp_types", "get_instance", "not_ported"]
