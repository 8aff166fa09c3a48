"""archive.sphinxext.diagrams: the network diagram's layout and SVG, and the timeline strip."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from archive import experiment_history as ex
from archive.sphinxext import diagrams
from tests.archive.test_experiment_history import tiny_net, write_folder


def test_layout_depths_and_lanes():
    pos, edges, lanes = diagrams.layout(tiny_net())
    assert lanes == ["host", "GPU 0", "GPU 1"]
    assert pos["data"] == (0, 0) and pos["conv1b"] == (1, 2) and pos["fc"] == (2, 1)
    assert pos["cost"] == (4, 1)
    assert ("data", "conv1b") in edges          # an input given as an index
    assert len(edges) == 7


def test_svg_is_wellformed_and_escaped():
    svg = diagrams.diagram_svg(tiny_net(), title="net <x>")
    root = ET.fromstring(svg)                    # raises on malformed XML
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "conv<1>&a" in texts                  # escaped in the source, intact once parsed
    assert "conv<1>&a" not in svg and "conv&lt;1&gt;&amp;a" in svg
    assert "conv 16 5×5/2" in texts and "conv 16 5×5 +relu" in texts
    assert 'stroke="currentColor"' in svg and "#000" not in svg
    assert len(list(root.iter("{http://www.w3.org/2000/svg}line"))) == 7


def test_layout_folds_detached_neurons_and_ignores_dict_order():
    """The port appends ``<name>_neuron`` layers after all others and rewires consumers to them."""
    net = {
        "data": {"type": "data", "gpu": -1},
        "conv1": {"type": "conv", "inputs": ["data"], "filters": 8, "filterSize": [3], "stride": [1],
                  "gpu": 0, "neuron": ""},
        "fc": {"type": "fc", "inputs": ["conv1_neuron"], "outputs": 10, "gpu": 0},
        "conv1_neuron": {"type": "neuron", "inputs": ["conv1"], "neuron": {"type": "relu"}, "gpu": 0},
    }
    pos, edges, lanes = diagrams.layout(net)
    assert "conv1_neuron" not in pos
    assert pos["fc"][0] == 2 and edges == [("data", "conv1"), ("conv1", "fc")]
    svg = diagrams.diagram_svg(net)
    assert "conv 8 3×3 +relu" in svg and ">conv1_neuron<" not in svg
    cyclic = {"a": {"type": "fc", "inputs": ["b"]}, "b": {"type": "fc", "inputs": ["a"]}}
    with pytest.raises(ValueError, match="cycle"):
        diagrams.layout(cyclic)


def test_timeline_svg(tmp_path):
    t = ex.load_experiments(write_folder(tmp_path / "layers"))
    svg = diagrams.timeline_svg(t.experiments, marked={"91": "the <net> & co"})
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(list(root.iter(f"{ns}circle"))) == 2          # 91 and 92 are dated; 91-half, 93 not
    assert [a.get("href") for a in root.iter(f"{ns}a")] == ["91.html", "92.html"]
    assert "the <net> & co" in "".join(x.text or "" for x in root.iter(f"{ns}title"))
    assert "2012-09" in svg and "2012-10" in svg
    assert diagrams.timeline_svg([]) == ""
