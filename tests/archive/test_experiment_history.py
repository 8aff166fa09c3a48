"""archive.experiment_history on synthetic layers/ folders, and (when fetched) on the 2012 release."""
from __future__ import annotations

from pathlib import Path

import pytest

from archive import ROOT
from archive import experiment_history as ex

PARAMS_A = """\
[conv1]
epsW=0.01
epsB=0.02

# this is like #90 but with wider fc layers
# on box1
# logs/layers-91.log
# /tmp/ConvNet__2012-09-13_03.43.56
# epoch 25: set epsw to 0.001 from 0.01
# epcoh 40: killed
# validation multiview:
# logprob:  1.741473, 0.406640, 0.182100

# restart on box2
# /tmp/ConvNet__2012-09-20_10.00.00
# multiview logprob:  1.700000, 0.400000, 0.180000

# 90 notes:
# this is the old one
# /tmp/ConvNet__2012-08-01_00.00.00
# [1.5, 0.5, 0.25]
"""

PARAMS_B = """\
[conv1]
epsW=0.001
epsB=0.02

# this is like #91 (so uses same file) but with a smaller rate
# /tmp/ConvNet__2012-10-01_12.00.00
# 0.41, 0.19
"""

PARAMS_C = """\
[conv1]
epsW=0.001
# this is like #55 but uses def file #55
"""

DEF_91 = """\
[data]
type=data
dataIdx=0

[conv1]
type=conv
inputs=data
filters=16
"""


def write_folder(d: Path) -> Path:
    d.mkdir()
    (d / "layer-params-91.cfg").write_text(PARAMS_A)
    (d / "layer-params-92.cfg").write_text(PARAMS_B)
    (d / "layer-params-93.cfg").write_text(PARAMS_C)
    (d / "layer-params-91-half.cfg").write_text("[conv1]\nepsW=0.1\n")
    (d / "layers-91.cfg").write_text(DEF_91)
    (d / "layers-94.cfg").write_text(DEF_91.replace("16", "32"))
    return d


def test_diary_blocks_dates_events_results():
    d = ex.parse_diary(PARAMS_A)
    assert [b.own for b in d.blocks] == [True, True, False]
    assert d.title == (5, "this is like #90 but with wider fc layers")
    assert d.parent == "90"
    assert [c.date for c in d.checkpoints] == ["2012-09-13", "2012-09-20"]   # copied notes excluded
    assert d.checkpoints[0].time == "03:43:56" and d.checkpoints[0].line == 8
    assert d.start_date == "2012-09-13" and d.dates == ("2012-09-13", "2012-09-20")
    assert [(e.epoch, e.text) for e in d.blocks[0].events] == [
        ("25", "set epsw to 0.001 from 0.01"), ("40", "killed")]
    r = d.headline
    assert (r.line, r.top1, r.top5, r.cost) == (12, 0.40664, 0.1821, 1.741473)
    assert r.label == "validation multiview" and r.multiview
    assert [x.label for x in d.results] == ["validation multiview", "multiview"]
    assert d.blocks[2].results[0].top1 == 0.5          # parsed, but not the experiment's own


def test_diary_pair_only_and_rejects_settings():
    d = ex.parse_diary(PARAMS_B)
    assert d.headline.top1 == 0.41 and d.headline.top5 == 0.19 and d.headline.cost is None
    # event lines with several numbers are not results; nor are triples with top5 > top1
    d2 = ex.parse_diary("# epoch 5: set epsw to 0.1, 0.2, 0.3\n# 1.0, 0.2, 0.3\n")
    assert d2.results == ()


def test_pairing_rules(tmp_path):
    t = ex.load_experiments(write_folder(tmp_path / "layers"))
    by = {e.stem: e for e in t.experiments}
    assert by["91"].def_stem == "91" and by["91"].pairing == "same stem"
    assert by["92"].def_stem == "91" and "line 5" in by["92"].pairing        # "so uses same file"
    assert by["91-half"].def_stem == "91" and "-half" in by["91-half"].pairing
    assert by["93"].def_stem is None and by["93"].missing_def == "55"
    assert by["91"].def_path == "layers/layers-91.cfg"
    assert t.unused_defs == ("94",)
    assert by["92"].named_defs == ("91",) and by["93"].named_defs == () and by["91"].named_defs == ()
    # numbering order, then start date
    assert [e.stem for e in t.experiments] == ["91", "91-half", "92", "93"]
    assert t.previous("92").stem == "91-half" and t.previous("91") is None


@pytest.mark.parametrize("stem,n", [("145", 145), ("145-half", 145), ("flickr-102", 102),
                                    ("2009-101", 101), ("inet-5layer-conv94-2gpu", 94),
                                    ("96-16k", 96), ("170-256-0.015", 170)])
def test_experiment_number(stem, n):
    assert ex.experiment_number(stem) == n


def test_consecutive_diff(tmp_path):
    d = write_folder(tmp_path / "layers")
    full = ex.diff_files(d / "layer-params-91.cfg", d / "layer-params-92.cfg", "a", "b")
    settings = ex.diff_files(d / "layer-params-91.cfg", d / "layer-params-92.cfg", "a", "b",
                             settings_only=True)
    assert "-epsW=0.01\n" in settings and "+epsW=0.001\n" in settings
    assert "#" not in settings and "# restart on box2" in full
    assert ex.diff_files(d / "layers-91.cfg", d / "layers-91.cfg", "a", "b") == ""


def tiny_net():
    return {
        "data": {"type": "data", "outputs": 3072},
        "labels": {"type": "data", "outputs": 1},
        "conv<1>&a": {"type": "conv", "inputs": ["data"], "filters": 16, "filterSize": [5],
                      "stride": [1], "gpu": 0, "neuron": "relu"},
        "conv1b": {"type": "conv", "inputs": [0], "filters": 16, "filterSize": [5],
                   "stride": [2], "gpu": 1},
        "fc": {"type": "fc", "inputs": ["conv<1>&a", "conv1b"], "outputs": 10, "gpu": 0},
        "probs": {"type": "softmax", "inputs": ["fc"], "gpu": 0},
        "cost": {"type": "cost.logreg", "inputs": ["labels", "probs"], "gpu": 0},
    }


def test_parse_def_reports_one_line(tmp_path):
    layers, err = ex.parse_def(tmp_path / "missing.cfg")
    assert layers is None and err and "\n" not in err


def test_release_timeline(alexnet_2012):
    t = ex.load_experiments(alexnet_2012 / "layers")
    by = {e.stem: e for e in t.experiments}
    assert len(t.experiments) == 97                     # 97 layer-params-*.cfg (the .save excluded)
    assert len(t.def_stems) == 63
    e = by["145"]
    assert e.def_stem == "145" and e.diary.start_date == "2012-09-13"
    assert (e.diary.headline.top1, e.diary.headline.top5) == (0.40664, 0.1821)
    assert by["147"].diary.headline.top1 == 0.41058 and by["148"].diary.headline.top5 == 0.19362
    assert by["170"].def_stem == "153" and by["170-4gpu"].def_stem == "153-4gpu"
    assert by["107"].def_stem is None and by["107"].missing_def == "101"
    assert by["145-2010"].def_stem == "145"
    assert by["141-2009"].named_defs == ("141-2009-2010", "141-2009-2012")
    assert t.unused_defs == ("141-2009",)
    nums = [x.number for x in t.experiments]
    assert nums == sorted(nums)
    assert set(ex.MARKED) <= set(by)


def test_structural_diff():
    a = tiny_net()
    b = {k: dict(v) for k, v in tiny_net().items()}
    b["conv1b"]["stride"] = [1]
    b["fc"]["inputs"] = ["conv<1>&a"]
    del b["probs"]
    b["cost"]["inputs"] = ["labels", "fc"]
    b["fc2"] = {"type": "fc", "inputs": ["fc"], "outputs": 5, "gpu": 0}
    d = ex.structural_diff(a, b)
    assert "removed probs (softmax)" in d and "added fc2 (fc 5)" in d
    assert "conv1b: stride [2] → [1]" in d
    assert "fc: inputs ['conv<1>&a', 'conv1b'] → ['conv<1>&a']" in d
    assert ex.structural_diff(a, tiny_net()) == []


def test_one_date_rule_the_earliest_own_checkpoint():
    """An experiment starts on its earliest own checkpoint date, even when the diary lists a later
    run first (as #137's does): the start never contradicts its checkpoint dates."""
    text = ("[conv1]\nepsW=0.01\n\n# restarted\n# /nobackup/kriz/tmp/ConvNet__2012-09-13_10.00.00\n\n"
            "# first run\n# /nobackup/kriz/tmp/ConvNet__2012-08-25_09.00.00\n")
    d = ex.parse_diary(text)
    assert [c.date for c in d.checkpoints] == ["2012-09-13", "2012-08-25"]
    assert d.start_date == "2012-08-25" == d.dates[0] and d.dates[1] == "2012-09-13"
    assert "earliest" in ex.DATE_RULE


def test_the_pages_parse_as_the_compat_table(alexnet_2012):
    """The experiment pages parse a def file as python -m port.compat does (a treefc net gets a
    class tree of our own), so every def file the committed table parses, the pages parse too:
    layers-137-tree.cfg and layers-146-2009-tree.cfg among them."""
    import json
    table = json.loads((ROOT / "docs" / "compat" / "alexnet-2012.json").read_text())
    parsed = [r["cfg"] for r in table["rows"] if r["cfg"].startswith("layers/") and r["parsed"]]
    assert {"layers/layers-137-tree.cfg", "layers/layers-146-2009-tree.cfg"} <= set(parsed)
    errors = {cfg: ex.parse_def(alexnet_2012 / cfg)[1] for cfg in parsed}
    assert {k: v for k, v in errors.items() if v} == {}
