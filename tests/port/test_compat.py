"""port.compat on a small release made here (CI), and on three real def files when fetched."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from port import cfg_pairs, compat
from tests.port.cfgnets import BASE, PARAMS, edit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def release(tmp_path) -> Path:
    """layers/: a net with its params file; a second def that a params diary names; one whose
    init function needs a checkpoint that does not exist; one without any params file;
    example-layers/: a 2011-style copy of the first."""
    r = tmp_path / "rel"
    (r / "layers").mkdir(parents=True)
    (r / "example-layers").mkdir()
    (r / "layers" / "layers-1.cfg").write_text(BASE)
    (r / "layers" / "layer-params-1.cfg").write_text(PARAMS)
    (r / "layers" / "layers-2.cfg").write_text(edit(BASE, "conv1", "initW=0.01", "initW=0.02"))
    (r / "layers" / "layer-params-3.cfg").write_text(PARAMS + "\n# this is like #1 but uses def file #2\n")
    (r / "layers" / "layers-4-init.cfg").write_text(
        edit(BASE, "fc10", "initW=0.01", "initW=0.01\ninitWFunc=initw.makew(fc10)"))
    (r / "layers" / "layer-params-4-init.cfg").write_text(PARAMS)
    (r / "layers" / "layers-5.cfg").write_text(BASE)
    (r / "layers" / "layer-params-1-more.cfg").write_text(PARAMS)       # → layers-1 by stem prefix
    return r


def test_rows_of_a_small_release(release):
    rows = {r.cfg: r for r in compat.run(release, batch=4, progress=False)}
    assert list(rows) == ["layers/layers-1.cfg", "layers/layers-2.cfg", "layers/layers-4-init.cfg",
                          "layers/layers-5.cfg"]
    one, two, init, five = rows.values()
    assert one.ran and one.params == ["layers/layer-params-1.cfg", "layers/layer-params-1-more.cfg"]
    # 24x24 images guessed (CIFAR crops for <= 100 classes): pool1 gives 12x12
    assert one.num_params == 16 * 3 * 25 + 16 + 16 * 12 * 12 * 10 + 10 and one.reason is None
    assert two.ran and two.params_used == "layers/layer-params-3.cfg" and "params file by diary" in two.notes
    assert two.num_params == one.num_params
    assert init.parsed is False and init.ran is False and "initw.makew(fc10)" in init.reason
    assert "/nobackup/kriz/tmp/ConvNet__2012-09-19_23.29.04" in init.reason
    assert not five.parsed and five.reason.startswith("no params file")
    assert compat.summary(list(rows.values())) == {"def_files": 4, "parsed": 2, "built": 2, "ran": 2}


def test_command_line_json_and_table(release):
    env = {"PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "port.compat", "--json", "--batch=2", str(release)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["summary"]["ran"] == 2 and len(out["rows"]) == 4
    r = subprocess.run([sys.executable, "-m", "port.compat", str(release), f"--out={release / 'c.json'}",
                        "--only=layers-1.cfg"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and json.loads((release / "c.json").read_text())["summary"]["ran"] == 1
    r = subprocess.run([sys.executable, "-m", "port.compat", str(release)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0 and "4 def files: 2 parsed, 2 built, 2 ran a step" in r.stdout
    r = subprocess.run([sys.executable, "-m", "port.compat", str(release / "nothing")], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_diary_notes_and_trees():
    assert cfg_pairs.DEF_FILE_RES[0].search("# this is like #159 (so uses same def file: 153) but").group(1) == "153"
    assert cfg_pairs.DEF_FILE_RES[0].search("# uses config file #153-4gpu").group(1) == "153-4gpu"
    tree, root = compat.synthetic_tree(10, fanout=3)
    assert len(tree) == 10 + 4 + 2 + 1 and root == len(tree) - 1 and sorted(tree[root]) == [14, 15]


def test_three_real_def_files(alexnet_2012):
    rows = {r.cfg: r for r in compat.run(alexnet_2012, batch=2, progress=False,
                                         only=["layers.gc.cfg", "example-layers/layers-18pct.cfg",
                                               "layers/layers-146-2011.cfg"])}
    assert rows["example-layers/layers.gc.cfg"].ran and rows["example-layers/layers-18pct.cfg"].ran
    r = rows["layers/layers-146-2011.cfg"]
    assert not r.parsed and "never published" in r.reason and "[conv1a] initWFunc" in r.reason


def test_the_committed_table_lists_the_release_def_files():
    """docs/compat/alexnet-2012.json (python -m port.compat --json on the real release) has one row
    per def file of the pinned manifest, no more, no less."""
    from archive import manifest

    table = json.loads((ROOT / "docs" / "compat" / "alexnet-2012.json").read_text())
    want = sorted(p for p in manifest.load("alexnet-2012").files
                  if Path(p).parent.as_posix() in compat.DEF_DIRS
                  and Path(p).name.startswith("layers") and p.endswith(".cfg"))
    assert len(want) == 72
    assert sorted(r["cfg"] for r in table["rows"]) == want
    s = table["summary"]
    assert s == {"def_files": 72, "parsed": sum(r["parsed"] for r in table["rows"]),
                 "built": sum(r["built"] for r in table["rows"]), "ran": sum(r["ran"] for r in table["rows"])}
    assert all(r["ran"] or r["reason"] for r in table["rows"])
