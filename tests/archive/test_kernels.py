"""archive.kernels: the released CUDA files compiled with today's nvcc (docs/kernels.md).

The parsing, the comparison and the command line are tested on made-up ptxas logs and tables;
the shims against the release manifests (no copy of an upstream file) and against the names the
compiled files use; the committed table against the manifests' bytes; the compile itself only
where an nvcc and the library headers are present (skipping, with the reason, elsewhere).
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest

from archive import ROOT, kernels
from archive.fetch import load_manifest
from tests.conftest import release_dir

LOG = """\
ptxas info    : 218048 bytes gmem, 72 bytes cmem[3], 64 bytes cmem[4]
ptxas info    : Compiling entry function '_Z4kOneILi2ELb1EEvPfi' for 'sm_80'
ptxas info    : Function properties for _Z4kOneILi2ELb1EEvPfi
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 4232 bytes smem, 440 bytes cmem[0]
ptxas info    : Compile time = 31.651 ms
ptxas info    : Function properties for _Z6helperf
    16 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Compiling entry function '_Z4kTwoPf' for 'sm_80'
ptxas info    : Function properties for _Z4kTwoPf
    24 bytes stack frame, 12 bytes spill stores, 20 bytes spill loads
ptxas info    : Used 255 registers, 360 bytes cmem[0], 8 bytes cmem[2]
ptxas info    : 218048 bytes gmem, 72 bytes cmem[3]
ptxas info    : Compiling entry function '_Z4kOneILi2ELb1EEvPfi' for 'sm_90'
ptxas info    : Function properties for _Z4kOneILi2ELb1EEvPfi
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 38 registers, used 1 barriers, 4232 bytes smem
ptxas info    : Compile time = 2.217 ms
"""


def test_parse_ptxas_reads_each_entry_per_architecture():
    rows = kernels.parse_ptxas(LOG)
    assert [(r["mangled"], r["arch"]) for r in rows] == [
        ("_Z4kOneILi2ELb1EEvPfi", "sm_80"), ("_Z4kTwoPf", "sm_80"),
        ("_Z4kOneILi2ELb1EEvPfi", "sm_90")]
    one80, two80, one90 = rows
    assert one80 == {"mangled": "_Z4kOneILi2ELb1EEvPfi", "arch": "sm_80", "registers": 40,
                     "barriers": 1, "stack": 0, "spill_stores": 0, "spill_loads": 0,
                     "smem": 4232, "cmem": {"0": 440}}
    # the device function's spills between the two entries are not kTwo's nor kOne's
    assert (two80["stack"], two80["spill_stores"], two80["spill_loads"]) == (24, 12, 20)
    assert (two80["registers"], two80["barriers"], two80["smem"]) == (255, 0, 0)
    assert two80["cmem"] == {"0": 360, "2": 8}
    assert (one90["registers"], one90["smem"], one90["cmem"]) == (38, 4232, {})


def test_parse_ptxas_refuses_an_entry_without_its_registers():
    with pytest.raises(ValueError, match="without a 'Used N registers' line, first _Z1kv"):
        kernels.parse_ptxas("ptxas info    : Compiling entry function '_Z1kv' for 'sm_90'\n")
    assert kernels.parse_ptxas("") == []


def test_diagnostics_keep_the_message_lines_not_the_echoed_source():
    log = """\
src/a.cu(791): error: identifier "cudaThreadSynchronize" is undefined
                          cudaThreadSynchronize();
                          ^

src/b.cuh(12): warning #177-D: variable "x" was declared but never referenced
      int x;
          ^
2 errors detected in the compilation of "src/a.cu".
nvcc fatal   : Unsupported gpu architecture 'compute_20'
src/c.cu:39:10: fatal error: Python.h: No such file or directory
"""
    assert kernels.diagnostics(log) == [
        'src/a.cu(791): error: identifier "cudaThreadSynchronize" is undefined',
        'src/b.cuh(12): warning: variable "x" was declared but never referenced',
        "nvcc fatal   : Unsupported gpu architecture 'compute_20'",
        "src/c.cu:39:10: fatal error: Python.h: No such file or directory"]


@pytest.mark.parametrize("demangled, short", [
    ("void kLogregCost(float*, float*, int)", "kLogregCost"),
    ("void img_acts_color<4, 1, true, false, false>(float const*, float*, int)",
     "img_acts_color<4, 1, true, false, false>"),
    ("void kEltwiseUnaryOp<NVMatrixOps::Exp>(float*, float*, unsigned int, NVMatrixOps::Exp)",
     "kEltwiseUnaryOp<NVMatrixOps::Exp>"),
    ("_Z3fooPf", "_Z3fooPf"),  # not demangled: left as it is
])
def test_short_name_drops_return_type_and_parameters(demangled, short):
    assert kernels.short_name(demangled) == short


# --- the shims ------------------------------------------------------------------------------

def test_the_shims_are_the_projects_own_and_copy_no_release_file():
    shims = sorted(kernels.SHIMS.iterdir())
    assert {p.name for p in shims} == {"cutil_inline.h", "helper_cuda.h", "probe_shfl_down.cu"}
    released = {e.sha256 for r in ("alexnet-2012", "cuda-convnet-r561", "cuda-convnet2")
                for e in load_manifest(r).files.values()}
    for p in shims:
        text = p.read_text()
        assert "Project-written" in text.split("\n", 3)[1] + text.split("\n", 3)[0], p.name
        assert hashlib.sha256(p.read_bytes()).hexdigest() not in released, p.name


def _defined(header: str) -> set[str]:
    return set(re.findall(r"#define\s+(\w+)", (kernels.SHIMS / header).read_text()))


def test_the_shims_define_every_name_of_theirs_the_compiled_files_use():
    """Every cutil / helper_cuda name that the compiled files and the headers they reach use
    (r561's include folders, alexnet-2012's include/, cuda-convnet2's nvmatrix) is defined."""
    for r in ("alexnet-2012", "cuda-convnet-r561", "cuda-convnet2"):
        release_dir(r)
    root = ROOT / "original"
    files = {root / u.source for u in kernels.UNITS}
    for u in kernels.UNITS + tuple(kernels.PROBES):
        for d in u.includes:
            files |= {p for p in (root / d).glob("*") if p.suffix in (".h", ".cuh")}
    files |= set((root / "cuda-convnet2/nvmatrix/src").glob("*.cu"))
    used = set()
    for f in files:
        text = f.read_text(errors="replace")
        used |= set(re.findall(r"\b(cutil\w+|getLastCudaError|checkCudaErrors)\s*\(", text))
        used |= {m for m in re.findall(r"\b(MIN|MAX)\s*\(", text)
                 if not re.search(rf"#define\s+{m}\b", text)}
    assert used >= {"cutilCheckMsg", "getLastCudaError", "checkCudaErrors", "MIN", "MAX"}
    assert used <= _defined("cutil_inline.h") | _defined("helper_cuda.h")


def test_library_headers_come_from_the_toolkit_else_the_wheels_else_are_named(tmp_path):
    toolkit, wheel = tmp_path / "toolkit", tmp_path / "wheel"
    for d, names in ((toolkit, ["curand.h", "curand_kernel.h"]),
                     (wheel, ["cublas.h", "cublas_api.h", "curand.h", "other.h"])):
        d.mkdir()
        for n in names:
            (d / n).write_text("/* made up */\n")
    dirs, missing = kernels.find_headers(Path("nvcc"), tmp_path / "build", system=[toolkit],
                                         extra=[wheel])
    linked = tmp_path / "build" / "library-include"
    assert dirs[0] == linked
    # cuBLAS from the wheel, with its companions; cuRAND from the toolkit, so not linked
    assert sorted(p.name for p in linked.iterdir()) == ["cublas.h", "cublas_api.h"]
    assert all(p.resolve().parent == wheel for p in linked.iterdir())
    assert [m for m in missing if not m.startswith("Python.h")] == [
        "cblas.h (a CBLAS (scipy-openblas32, or Debian libopenblas-dev))"]


# --- the committed table --------------------------------------------------------------------

@pytest.fixture(scope="module")
def table() -> dict:
    return kernels.load_table(kernels.TABLE)


def test_the_committed_table_is_of_the_pinned_bytes_and_complete(table):
    assert table["arches"] == list(kernels.ARCHES)
    assert [(u["release"], u["path"]) for u in table["units"]] == [
        (u.release, u.path) for u in kernels.UNITS]
    for u in table["units"]:
        assert u["sha256"] == load_manifest(u["release"]).files[u["path"]].sha256, u["path"]
        assert u["compiled"] and u["kernels"], u["path"]
        for k in u["kernels"]:  # every kernel compiled for every architecture
            assert set(k) == {"mangled", "name", *kernels.ARCHES}, k["mangled"]
    assert table["shims"] == ["cutil_inline.h", "helper_cuda.h"]
    assert [p["id"] for p in table["probes"]] == [p.id for p in kernels.PROBES]
    assert all(p["confirmed"] and not p["compiled"] for p in table["probes"])


def test_the_pages_sentence_on_cudathreadsynchronize_holds(table):
    """docs/kernels.md: every error reported for r561's nvmatrix.cu and worker.cu is
    cudaThreadSynchronize."""
    for p in table["probes"]:
        if p["id"].startswith("cudaThreadSynchronize/"):
            assert p["errors"] and all('"cudaThreadSynchronize" is undefined' in e
                                       for e in p["errors"]), p["id"]


def test_the_pages_sentences_on_the_templates_hold(table):
    """docs/kernels.md: img_acts.cu's kernels are five templates; neuron.cu's are all nvmatrix's
    element-wise templates; ptxas reports bank 0 for every sm_80 kernel and no bank for sm_90."""
    units = {u["path"]: u["kernels"] for u in table["units"]}
    stem = lambda k: kernels.short_name(k["name"]).split("<")[0]  # noqa: E731
    assert len({stem(k) for k in units["src/cudaconv2/img_acts.cu"]}) == 5
    assert all(stem(k).startswith("kEltwise") and "<" in k["name"] for k in units["src/neuron.cu"])
    every = [k for ks in units.values() for k in ks]
    assert all("0" in k["sm_80"]["cmem"] and k["sm_90"]["cmem"] == {} for k in every)


def test_dumps_round_trips_without_the_timings(table):
    t = copy.deepcopy(table) | {"_timing": {"wall_s": 1.0}}
    assert json.loads(kernels.dumps(t)) == table
    assert kernels.TABLE.read_text() == kernels.dumps(table)  # written by the tool, as it is


# --- the comparison -------------------------------------------------------------------------

def _tiny(version="13.0.88") -> dict:
    row = {"registers": 40, "spill_stores": 0, "spill_loads": 0, "stack": 0, "smem": 4232,
           "cmem": {"0": 440}, "barriers": 1}
    return {"schema": 1, "compiler": {"nvcc": version, "demangler": "c++filt"},
            "arches": ["sm_80"], "flags": ["-DUNIX"], "shims": ["cutil_inline.h"],
            "units": [{"release": "r", "path": "a.cu", "sha256": "0" * 64, "compiled": True,
                       "diagnostics": [], "kernels": [
                           {"mangled": "_Z1kv", "name": "k()", "sm_80": dict(row)},
                           {"mangled": "_Z1jv", "name": "j()", "sm_80": dict(row)}]}],
            "probes": [{"id": "p", "claim": "c", "source": "r/b.cu", "flags": [],
                        "compiled": False, "confirmed": True, "errors": ["r/b.cu(1): error: x"]}]}


def test_compare_passes_an_identical_compile():
    assert kernels.compare(_tiny(), _tiny()) == ([], [])


def test_compare_fails_when_a_file_that_compiled_no_longer_does():
    new = _tiny()
    new["units"][0] |= {"compiled": False, "kernels": [], "diagnostics": ["a.cu(3): error: y"]}
    fail, _ = kernels.compare(_tiny(), new)
    assert fail[0] == "r/a.cu: compiled, now fails: a.cu(3): error: y"
    assert any("kernel _Z1kv for sm_80 compiled, no longer does" in f for f in fail)


def test_compare_fails_when_a_kernel_is_gone_even_with_another_nvcc():
    new = _tiny("13.2.51")
    del new["units"][0]["kernels"][1]
    fail, notes = kernels.compare(_tiny(), new)
    assert fail == ["r/a.cu: kernel _Z1jv for sm_80 compiled, no longer does"]


def test_compare_other_numbers_fail_with_the_same_nvcc_and_are_a_note_with_another():
    new = _tiny()
    new["units"][0]["kernels"][0]["sm_80"]["registers"] = 41
    fail, notes = kernels.compare(_tiny(), new)
    assert len(fail) == 1 and "the table is stale" in fail[0] and "_Z1kv sm_80" in fail[0]
    new["compiler"]["nvcc"] = "13.2.51"
    fail, notes = kernels.compare(_tiny(), new)
    assert fail == [] and "1 kernel rows with other numbers" in notes[0]


def test_compare_fails_when_a_probe_changes_its_outcome():
    new = _tiny("13.2.51")
    new["probes"][0] |= {"compiled": True, "confirmed": False, "errors": []}
    fail, _ = kernels.compare(_tiny(), new)
    assert fail == ["probe p: the table says compiled=False confirmed=True, now "
                    "compiled=True confirmed=False"]


# --- the command line -----------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["-j", "0"], "-j 0: expected a positive number of files at once"),
    (["--only", "alexnet-2012/src/layer.cu"], "--only alexnet-2012/src/layer.cu: not one of"),
    (["--check", "nowhere.json"], "nowhere.json: no such file"),
    (["--check", "x.json", "--arch", "sm_90"], "--check compiles what the table holds"),
    (["--arch", "sm_20"], "argument --arch: invalid choice: 'sm_20'"),
    (["--out", "a.json", "--check", "b.json"], "not allowed with argument"),
])
def test_command_line_mistakes_are_one_line_and_exit_2(argv, message, capsys):
    assert kernels.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m archive.kernels: ")
    assert message in err


def test_a_table_that_is_not_one_is_refused(tmp_path, capsys):
    (tmp_path / "t.json").write_text('{"schema": 1,\n "units": [}')
    assert kernels.main(["--check", str(tmp_path / "t.json")]) == 2
    assert "t.json: line 2: not JSON" in capsys.readouterr().err
    (tmp_path / "t.json").write_text('{"rows": []}')
    assert kernels.main(["--check", str(tmp_path / "t.json")]) == 2
    assert "not a kernel table of schema 1" in capsys.readouterr().err


def test_no_nvcc_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("ALEXNET_NVCC", "/nonexistent/nvcc")
    assert kernels.main(["--which"]) == 2
    assert "ALEXNET_NVCC=/nonexistent/nvcc: not an executable file" in capsys.readouterr().err


# --- the compile itself, where there is an nvcc ---------------------------------------------

def _toolchain(tmp_path: Path) -> kernels.Toolchain:
    if kernels.find_nvcc() is None:
        pytest.skip("no nvcc (PATH, /usr/local/cuda, nor the nvidia-cuda-nvcc wheel): "
                    "pip install -e '.[kernels]' to run the compile")
    tc = kernels.toolchain(tmp_path)
    if tc.missing:
        pytest.skip("headers missing: " + "; ".join(tc.missing) + " (pip install -e '.[kernels]')")
    return tc


def test_layer_kernels_compiles_as_the_committed_table_says(tmp_path, table):
    """The smallest of the six files, for sm_90 only (seconds): the same kernels as the table,
    with the same numbers where the nvcc is the table's."""
    release_dir("alexnet-2012")
    release_dir("cuda-convnet-r561")
    tc = _toolchain(tmp_path)
    unit = next(u for u in kernels.UNITS if u.path == "src/layer_kernels.cu")
    new = kernels.build_table(tc, (unit,), ("sm_90",), (), jobs=1, build=tmp_path,
                              progress=False)
    (got,) = new["units"]
    assert got["compiled"], got["diagnostics"]
    old = next(u for u in table["units"] if u["path"] == unit.path)
    assert {k["mangled"] for k in got["kernels"]} == {k["mangled"] for k in old["kernels"]}
    if tc.version == table["compiler"]["nvcc"]:
        want = {k["mangled"]: k["sm_90"] for k in old["kernels"]}
        assert {k["mangled"]: k["sm_90"] for k in got["kernels"]} == want
