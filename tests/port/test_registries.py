"""One registry per kind: the eight costs in port.layers.cost.cost_classes (makeCostLayer's twin),
the data providers in the literal port.data.provider.dp_types; both import whichever module is
imported first."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from port.data import provider
from port.layers import cost, layer_classes
from tests.conftest import ROOT

COSTS = {"cost.crossent", "cost.crossent2", "cost.logreg", "cost.sum2", "cost.gsum2", "cost.tica",
         "cost.msm", "cost.rflickr"}


def test_all_eight_costs_in_the_one_cost_registry():
    assert set(cost.cost_classes) == COSTS
    assert {k for k in layer_classes if k.startswith("cost.")} == COSTS
    for key, cls in cost.cost_classes.items():
        assert layer_classes[key] is cls
        assert issubclass(cls, cost.CostLayer)


def test_cost_registry_matches_make_cost_layer(alexnet_2012):
    src = (alexnet_2012 / "src" / "layer.cu").read_text(errors="replace")
    body = src[src.index("CostLayer::makeCostLayer("):]
    body = body[:body.index("throw string(")]
    assert list(cost.cost_classes) == re.findall(r'type == "(cost\.[a-z0-9]+)"', body)


def test_data_provider_registry_is_a_literal():
    """dp_types is filled where it is declared (nothing updates it at import)."""
    assert set(provider.dp_types) == {"default", "labeled", "labeled-memory", "dummy-lr-n",
                                      "inet-lr-cropped-jpeg", "cifar", "cifar-cropped"}
    assert not set(provider.dp_types) & set(provider.not_ported)
    for cls in provider.dp_types.values():
        assert issubclass(cls, provider.DataProvider)
    init = (ROOT / "port" / "data" / "__init__.py").read_text()
    assert "dp_types.update" not in init and "not_ported.update" not in init


@pytest.mark.parametrize("module", ["port.layers.cost_ext", "port.layers.multisoftmax",
                                    "port.layers.cost", "port.data.cifar", "port.data.jpeg",
                                    "port.data.synthetic", "port.data.provider"])
def test_registries_whatever_module_comes_first(module):
    """The registries import the modules that subclass their base classes: no import cycle, from
    whichever module a program imports first."""
    code = (f"import {module}\nfrom port.layers.cost import cost_classes\n"
            f"from port.data.provider import dp_types\nprint(len(cost_classes), len(dp_types))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["8", "7"]
