"""benchmarks/gpu.sh and gpu-prepare.sh parse, and what the GPU run must carry is git-ignored
(carried paths travel only because they are named; tracked files travel anyway)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from archive import ROOT

SCRIPTS = [ROOT / "benchmarks" / "gpu.sh", ROOT / "benchmarks" / "gpu-prepare.sh"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_scripts_parse(script):
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_carried_paths_are_git_ignored_and_made_by_the_preparation():
    header = SCRIPTS[0].read_text()
    (carry,) = re.findall(r"carry=\[([^\]]*)\]", header)
    paths = re.findall(r'"([^"]+)"', carry)
    assert paths == ["benchmarks/gpu-data", "original/alexnet-2012"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *[p + "/" for p in paths]], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert ignored == [p + "/" for p in paths]
    assert 'DATA=benchmarks/gpu-data' in SCRIPTS[1].read_text()
