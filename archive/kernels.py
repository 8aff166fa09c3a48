"""The 2012 kernels on today's compiler: compile the released CUDA files, unmodified, with nvcc.

    python -m archive.kernels                        # compile, print the per-file summary
    python -m archive.kernels --out docs/kernels/cuda13.json
    python -m archive.kernels --check docs/kernels/cuda13.json
    python -m archive.kernels --which                # which nvcc, demangler and headers

r561's four cudaconv2 files and alexnet-2012's ``layer_kernels.cu`` and ``neuron.cu`` are compiled
from the bytes in ``original/`` (checked against the release manifests first) for sm_80 and sm_90,
with the release Makefile's defines, the project's shims (``archive/kernel_shims/``: the CUDA SDK
headers that no toolkit ships any more) and r561's nvmatrix headers (``-I``, not copied).
``ptxas -v`` is parsed into one row per kernel and architecture: registers, barriers, stack,
spill stores and loads, shared and constant memory; names are demangled (cu++filt, or GNU
c++filt where the toolkit has none). The files compile in parallel (``-j``, default: the cores).

The probes then try what the site says does not survive CUDA 13 (the Makefiles' sm_20 and
sm_35 targets, ``cudaThreadSynchronize``, cuda-convnet2's ``__shfl_down`` and ``memoryType``) and
record the compiler's error lines for each. Timings are printed (wall, and the compilers' CPU
seconds), never written to the table.

``--check FILE`` compiles afresh and compares with a table written by ``--out``: it fails (exit 1)
if a file or kernel that compiled there no longer compiles, or a probe's outcome changed; with the
same nvcc version, it also fails on any other difference (a stale table). With another version it
prints how many rows differ and passes. The nvcc is ``$ALEXNET_NVCC``, else ``nvcc`` on the PATH,
else ``/usr/local/cuda/bin/nvcc``, else the ``nvidia-cuda-nvcc`` wheel (``pip install
-e '.[kernels]'``, which also brings the cuBLAS, cuRAND and CBLAS headers that nvmatrix includes).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import importlib.util
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from archive import ROOT
from archive.fetch import original_root, verify
from port.errors import ArgumentParser, UserError, main_guard

PROG = "python -m archive.kernels"
SHIMS = Path(__file__).resolve().parent / "kernel_shims"
ARCHES = ("sm_80", "sm_90")
TABLE = ROOT / "docs" / "kernels" / "cuda13.json"
SCHEMA = 1

# The release Makefiles' COMMONFLAGS (r561 Makefile:12, alexnet-2012 Makefile-distrib:12) and the
# release flags of common-gcc-cuda-4.0.mk (-DUNIX, -O2, -fno-strict-aliasing, -fPIC), which the
# original build gives every file; without NUMPY_INTERFACE neuron.cuh names PyObject undeclared.
DEFINES = ("-DNUMPY_INTERFACE", "-DMODELNAME=_ConvNet", "-DINITNAME=init_ConvNet", "-DUNIX")
FLAGS = ("-O2", "-Xcompiler", "-fno-strict-aliasing,-fPIC")

R561_INCLUDES = ("include/nvmatrix", "include/cudaconv2", "include/common")
# The 2012 release ships no nvmatrix/cudaconv2/common headers: it builds against r561's.
R561_FOR_2012 = tuple(f"cuda-convnet-r561/{d}" for d in R561_INCLUDES)


@dataclass(frozen=True)
class Unit:
    """One translation unit: ``release/path``, compiled with these include folders (each
    ``release/dir`` under original/)."""
    release: str
    path: str
    includes: tuple[str, ...]

    @property
    def source(self) -> str:
        return f"{self.release}/{self.path}"


UNITS = tuple(
    [Unit("cuda-convnet-r561", f"src/cudaconv2/{n}.cu",
          tuple(f"cuda-convnet-r561/{d}" for d in ("include",) + R561_INCLUDES))
     for n in ("filter_acts", "weight_acts", "img_acts", "conv_util")]
    + [Unit("alexnet-2012", f"src/{n}.cu", ("alexnet-2012/include",) + R561_FOR_2012)
       for n in ("layer_kernels", "neuron")])


@dataclass(frozen=True)
class Probe:
    """A claim that something of the releases does not compile with today's nvcc, tried.
    ``source`` is a release file, or ``shim:NAME`` (a probe file of the project's, under
    ``archive/kernel_shims/``) when the construct is a template that no release file
    instantiates on its own."""
    id: str
    claim: str
    source: str
    includes: tuple[str, ...]
    gencode: tuple[str, ...]
    expect: str  # a regular expression the first error line matches


PROBES = (
    Probe("sm_20", "The release Makefiles build for sm_20 (GENCODE_ARCH, Fermi), which nvcc "
          "dropped in CUDA 9.", "alexnet-2012/src/layer_kernels.cu",
          ("alexnet-2012/include",) + R561_FOR_2012,
          ("-gencode=arch=compute_20,code=sm_20",), r"Unsupported gpu architecture 'compute_20'"),
    Probe("sm_35", "cuda-convnet2's Makefiles build for sm_35 (GENCODE_SM35, Kepler), which "
          "nvcc dropped in CUDA 12.", "cuda-convnet2/nvmatrix/src/nvmatrix_kernels.cu",
          ("cuda-convnet2/nvmatrix/include",), ("-gencode=arch=compute_35,code=sm_35",),
          r"Unsupported gpu architecture 'compute_35'"),
    Probe("cudaThreadSynchronize/nvmatrix", "r561's nvmatrix.cu calls cudaThreadSynchronize, "
          "deprecated since CUDA 4.0 and gone from CUDA 13's runtime API.",
          "cuda-convnet-r561/src/nvmatrix/nvmatrix.cu",
          tuple(f"cuda-convnet-r561/{d}" for d in ("include",) + R561_INCLUDES), ("-arch=sm_90",),
          r'identifier "cudaThreadSynchronize" is undefined'),
    Probe("cudaThreadSynchronize/worker", "r561's worker.cu calls cudaThreadSynchronize too.",
          "cuda-convnet-r561/src/worker.cu",
          tuple(f"cuda-convnet-r561/{d}" for d in ("include",) + R561_INCLUDES), ("-arch=sm_90",),
          r'identifier "cudaThreadSynchronize" is undefined'),
    Probe("__shfl_down", "cuda-convnet2's shfl_down (nvmatrix_kernels.cuh) calls __shfl_down "
          "without _sync, removed in CUDA 9 for sm_70 and later; the probe instantiates it.",
          "shim:probe_shfl_down.cu", ("cuda-convnet2/nvmatrix/include",), ("-arch=sm_90",),
          r'identifier "__shfl_down" is undefined'),
    Probe("memoryType", "cuda-convnet2's nvmatrix.cu reads cudaPointerAttributes::memoryType, "
          "which CUDA 10 renamed to type and CUDA 12 removed.",
          "cuda-convnet2/nvmatrix/src/nvmatrix.cu",
          ("cuda-convnet2/nvmatrix/include", "cuda-convnet2/util/include"), ("-arch=sm_90",),
          r'has no member "memoryType"'),
)


# ---------------------------------------------------------------------------------------------
# ptxas -v

_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_BARRIERS = re.compile(r"used (\d+) barriers")
_SMEM = re.compile(r"(\d+) bytes smem")
_CMEM = re.compile(r"(\d+) bytes cmem\[(\d+)\]")
_DIAG = re.compile(r"^(?P<where>\S+\(\d+\)): (?P<kind>error|warning)(?: #\S+)?: (?P<msg>.*)$")
_FATAL = re.compile(r"^(?:nvcc fatal|ptxas fatal|.*fatal error)\s*:\s*(.*)$")


def parse_ptxas(text: str) -> list[dict]:
    """One dict per kernel and architecture from ``ptxas -v`` output (nvcc ``-Xptxas -v``):
    ``mangled``, ``arch``, ``registers``, ``barriers``, ``stack``, ``spill_stores``,
    ``spill_loads``, ``smem``, ``cmem`` (bank → bytes). Device functions that are not entries
    (their own "Function properties" block) are not kernels and are left out."""
    kernels: list[dict] = []
    current: dict | None = None
    props_for: str | None = None
    for line in text.splitlines():
        if m := _ENTRY.search(line):
            current = {"mangled": m[1], "arch": m[2], "registers": None, "barriers": 0,
                       "stack": 0, "spill_stores": 0, "spill_loads": 0, "smem": 0, "cmem": {}}
            kernels.append(current)
            props_for = None
        elif m := _PROPS.search(line):
            props_for = m[1]
        elif m := _FRAME.search(line):
            if current is not None and props_for == current["mangled"]:
                current["stack"], current["spill_stores"], current["spill_loads"] = (
                    int(m[1]), int(m[2]), int(m[3]))
        elif (m := _USED.search(line)) and current is not None:
            current["registers"] = int(m[1])
            if b := _BARRIERS.search(line):
                current["barriers"] = int(b[1])
            if s := _SMEM.search(line):
                current["smem"] = int(s[1])
            current["cmem"] = {bank: int(n) for n, bank in _CMEM.findall(line)}
    missing = [k["mangled"] for k in kernels if k["registers"] is None]
    if missing:
        raise ValueError(f"ptxas output names {len(missing)} kernel(s) without a 'Used N "
                         f"registers' line, first {missing[0]}")
    return kernels


def diagnostics(text: str) -> list[str]:
    """The compiler's error and warning lines (``file(line): error: message``), and fatal lines,
    without the source lines it echoes under them."""
    out = []
    for line in text.splitlines():
        if m := _DIAG.match(line.strip()):
            out.append(f"{m['where']}: {m['kind']}: {m['msg']}")
        elif m := _FATAL.match(line.strip()):
            out.append(line.strip())
    return out


def short_name(demangled: str) -> str:
    """``void f<2, true>(float*, int)`` → ``f<2, true>``: the kernel without its return type
    and parameter list (every kernel returns void)."""
    name = demangled[5:] if demangled.startswith("void ") else demangled
    depth = 0
    for i, c in enumerate(name):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "(" and depth == 0:
            return name[:i]
    return name


# ---------------------------------------------------------------------------------------------
# the toolchain

@dataclass
class Toolchain:
    nvcc: Path
    origin: str                      # how it was found
    version: str                     # "13.0.88"
    demangler: list[str] | None      # argv of cu++filt / c++filt
    demangler_name: str
    include_dirs: list[Path] = field(default_factory=list)  # library, Python and NumPy headers
    missing: list[str] = field(default_factory=list)        # headers found nowhere


def _wheel_roots() -> list[Path]:
    """``site-packages/nvidia/cu13`` of the installed NVIDIA wheels (a namespace package)."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    roots = [Path(p) / "cu13" for p in spec.submodule_search_locations]
    return [r for r in roots if r.is_dir()]


def find_nvcc() -> tuple[Path, str] | None:
    """The nvcc to use and where it came from, or None."""
    if os.environ.get("ALEXNET_NVCC"):
        p = Path(os.environ["ALEXNET_NVCC"])
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise UserError(f"ALEXNET_NVCC={p}: not an executable file")
        return p, "$ALEXNET_NVCC"
    if w := shutil.which("nvcc"):
        return Path(w), "the machine's (PATH)"
    if (p := Path("/usr/local/cuda/bin/nvcc")).is_file():
        return p, "the machine's (/usr/local/cuda)"
    for root in _wheel_roots():
        if (p := root / "bin" / "nvcc").is_file():
            return p, "the nvidia-cuda-nvcc wheel"
    return None


def nvcc_version(nvcc: Path) -> str:
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release [\d.]+, V([\d.]+)", out)
    if not m:
        raise UserError(f"{nvcc}: `--version` printed no 'release X, VX.Y.Z' line")
    return m[1]


def _demangler(nvcc: Path) -> tuple[list[str] | None, str]:
    real = nvcc.resolve().parent
    for d in (nvcc.parent, real):
        if (p := d / "cu++filt").is_file():
            return [str(p)], "cu++filt"
    if w := shutil.which("cu++filt"):
        return [w], "cu++filt"
    if w := shutil.which("c++filt"):  # the same Itanium ABI names; GNU binutils
        return [w], "c++filt (GNU binutils; the toolkit has no cu++filt)"
    return None, "none (names left mangled)"


# Headers the compiled files include that are not nvcc's own: where each may be.
_LIBRARY_HEADERS = {
    "cublas.h": "cuBLAS (nvidia-cublas)",
    "curand.h": "cuRAND (nvidia-curand)",
    "curand_kernel.h": "cuRAND (nvidia-curand)",
    "cblas.h": "a CBLAS (scipy-openblas32, or Debian libopenblas-dev)",
}


def _compiler_includes(nvcc: Path) -> list[Path]:
    top = nvcc.resolve().parent.parent
    return [top / "include", top / "targets" / "x86_64-linux" / "include"]


def _wheel_includes() -> list[Path]:
    """The header folders of the kernels extra's wheels (NVIDIA's, scipy-openblas32's)."""
    out = [r / "include" for r in _wheel_roots()]
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is not None and spec.submodule_search_locations:
        out += [Path(p) / "include" for p in spec.submodule_search_locations]
    return out


def find_headers(nvcc: Path, build: Path, system: list[Path] | None = None,
                 extra: list[Path] | None = None) -> tuple[list[Path], list[str]]:
    """The include folders (Python's, NumPy's, and a folder under ``build`` linking the library
    headers that the ``system`` folders, nvcc's own and /usr/include, lack, from the ``extra``
    ones, the wheels'), and the headers found nowhere."""
    import numpy

    dirs: list[Path] = []
    missing: list[str] = []
    linked = build / "library-include"
    linked.mkdir(parents=True, exist_ok=True)
    if system is None:
        system = _compiler_includes(nvcc) + [Path("/usr/include"),
                                             Path("/usr/include/x86_64-linux-gnu")]
    extra = _wheel_includes() if extra is None else extra
    for header, what in _LIBRARY_HEADERS.items():
        if any((d / header).is_file() for d in system):
            continue
        home = next((d for d in extra if (d / header).is_file()), None)
        if home is None:
            missing.append(f"{header} ({what})")
            continue
        stem = header.split(".")[0].split("_")[0]  # cublas*, curand*, cblas + its config
        for f in home.iterdir():
            if f.name.startswith(stem) or (stem == "cblas" and f.name == "openblas_config.h"):
                if not (linked / f.name).exists():
                    (linked / f.name).symlink_to(f)
    dirs.append(linked)
    py = Path(sysconfig.get_paths()["include"])
    if not (py / "Python.h").is_file():
        missing.append(f"Python.h ({py}: install the Python development headers)")
    np_inc = Path(numpy.get_include())
    dirs += [py, np_inc, np_inc / "numpy"]
    return dirs, missing


def toolchain(build: Path) -> Toolchain:
    found = find_nvcc()
    if found is None:
        raise UserError("no nvcc: none in $ALEXNET_NVCC, on the PATH, in /usr/local/cuda/bin, "
                        "nor the nvidia-cuda-nvcc wheel (pip install -e '.[kernels]')")
    nvcc, origin = found
    demangler, dname = _demangler(nvcc)
    dirs, missing = find_headers(nvcc, build)
    return Toolchain(nvcc, origin, nvcc_version(nvcc), demangler, dname, dirs, missing)


def demangle(tc: Toolchain, names: list[str]) -> dict[str, str]:
    if not names or tc.demangler is None:
        return {n: n for n in names}
    out = subprocess.run(tc.demangler, input="\n".join(names) + "\n", capture_output=True,
                         text=True, check=True).stdout.splitlines()
    if len(out) != len(names):
        raise RuntimeError(f"{tc.demangler[0]} returned {len(out)} lines for {len(names)} names")
    return dict(zip(names, out))


# ---------------------------------------------------------------------------------------------
# compiling

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _argv(tc: Toolchain, source: str, includes: tuple[str, ...], gencode: list[str],
          out: Path) -> list[str]:
    argv = [str(tc.nvcc), "-c", *gencode, "-Xptxas", "-v", *DEFINES, *FLAGS, "-I", str(SHIMS)]
    for d in includes:
        argv += ["-I", d]
    for d in tc.include_dirs:
        argv += ["-I", str(d)]
    return argv + [source, "-o", str(out)]


def _gencode(arches) -> list[str]:
    return [f"-gencode=arch=compute_{a[3:]},code={a}" for a in arches]


def _run(argv: list[str], cwd: Path) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0


def compile_unit(tc: Toolchain, unit: Unit, arches, build: Path) -> dict:
    root = original_root()
    out = build / (unit.source.replace("/", "__") + ".o")
    rc, log, seconds = _run(_argv(tc, unit.source, unit.includes, _gencode(arches), out), root)
    kernels = parse_ptxas(log) if rc == 0 else []
    return {"release": unit.release, "path": unit.path, "sha256": _sha256(root / unit.source),
            "compiled": rc == 0, "diagnostics": diagnostics(log), "kernels": kernels,
            "seconds": seconds}


def run_probe(tc: Toolchain, probe: Probe, build: Path) -> dict:
    root = original_root()
    if probe.source.startswith("shim:"):
        source = str(SHIMS / probe.source[5:])
    else:
        source = probe.source
    out = build / ("probe-" + re.sub(r"\W", "_", probe.id) + ".o")
    rc, log, seconds = _run(_argv(tc, source, probe.includes, list(probe.gencode), out), root)
    diags = diagnostics(log)
    errors = [d for d in diags if "error" in d or "fatal" in d]
    return {"id": probe.id, "claim": probe.claim, "source": probe.source,
            "flags": list(probe.gencode), "compiled": rc == 0,
            "errors": [e.replace(str(SHIMS) + "/", "archive/kernel_shims/") for e in errors],
            "confirmed": (rc != 0 and bool(errors)
                          and re.search(probe.expect, errors[0]) is not None),
            "seconds": seconds}


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: the compile's own cost,
    whatever else the machine is doing."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _check_sources(units, probes) -> None:
    releases = {u.release for u in units} | {
        p.source.split("/")[0] for p in probes if not p.source.startswith("shim:")}
    for release in sorted(releases):
        problems = verify(release)
        if problems:
            raise UserError(f"original/{release}: {problems[0].path}: {problems[0].reason} "
                            f"({len(problems)} difference(s) from the manifest; the kernels are "
                            f"compiled from the release's own bytes: `python -m archive fetch "
                            f"{release} --force`)")


def build_table(tc: Toolchain, units=UNITS, arches=ARCHES, probes=PROBES, jobs: int | None = None,
                build: Path | None = None, progress: bool = True) -> dict:
    """Compile ``units`` for ``arches`` and try ``probes``, ``jobs`` at a time; the table."""
    from tqdm import tqdm

    if tc.missing:
        raise UserError("headers found nowhere: " + "; ".join(tc.missing)
                        + " (pip install -e '.[kernels]' brings the library headers)")
    _check_sources(units, probes)
    jobs = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="alexnet-kernels-") as tmp:
        build = build or Path(tmp)
        t0, cpu0 = time.perf_counter(), _children_cpu()
        with cf.ThreadPoolExecutor(jobs) as pool, \
                tqdm(total=len(units) + len(probes), desc="nvcc", unit="file",
                     disable=not progress, file=sys.stderr) as bar:
            def done(f):
                bar.update(1)
            # the biggest files first, so that the cores finish together
            root = original_root()
            order = sorted(units, key=lambda u: -(root / u.source).stat().st_size)
            futs = {u: pool.submit(compile_unit, tc, u, arches, build) for u in order}
            ufut = [futs[u] for u in units]
            pfut = [pool.submit(run_probe, tc, p, build) for p in probes]
            for f in ufut + pfut:
                f.add_done_callback(done)
            results = [f.result() for f in ufut]
            probed = [f.result() for f in pfut]
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    names = demangle(tc, sorted({k["mangled"] for r in results for k in r["kernels"]}))
    units_out = []
    for r in results:
        rows: dict[str, dict] = {}
        for k in r["kernels"]:
            row = rows.setdefault(k["mangled"], {"mangled": k["mangled"],
                                                 "name": names[k["mangled"]]})
            row[k["arch"]] = {key: k[key] for key in ("registers", "spill_stores", "spill_loads",
                                                      "stack", "smem", "cmem", "barriers")}
        units_out.append({key: r[key] for key in ("release", "path", "sha256", "compiled",
                                                  "diagnostics")}
                         | {"kernels": sorted(rows.values(), key=lambda x: x["name"])})
    return {
        "schema": SCHEMA,
        "tool": PROG,
        "compiler": {"nvcc": tc.version, "demangler": tc.demangler_name},
        "arches": list(arches),
        "flags": list(DEFINES + FLAGS),
        "shims": sorted(p.name for p in SHIMS.glob("*.h")),
        "units": units_out,
        "probes": [{k: v for k, v in p.items() if k != "seconds"} for p in probed],
        # not written by --out (timings live in benchmarks, not in a committed table)
        "_timing": {"wall_s": wall, "cpu_s": cpu, "jobs": jobs,
                    "units": {f'{r["release"]}/{r["path"]}': r["seconds"] for r in results},
                    "probes": {p["id"]: p["seconds"] for p in probed}},
    }


# ---------------------------------------------------------------------------------------------
# the table on disk, and the check

def dumps(table: dict) -> str:
    """The table as JSON, one kernel a line (diffs stay readable), without the timings."""
    head = {k: v for k, v in table.items() if k not in ("units", "_timing")}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)},")
    lines.append('  "units": [')
    for i, u in enumerate(table["units"]):
        meta = {k: v for k, v in u.items() if k != "kernels"}
        lines.append("    {" + json.dumps(meta, sort_keys=True)[1:-1] + ', "kernels": [')
        ks = [json.dumps(k, sort_keys=True) for k in u["kernels"]]
        lines += [f"      {k}," for k in ks[:-1]] + ([f"      {ks[-1]}"] if ks else [])
        lines.append("    ]}" + ("," if i < len(table["units"]) - 1 else ""))
    lines += ["  ]", "}"]
    text = "\n".join(lines) + "\n"
    json.loads(text)  # it is JSON
    return text


def write_table(table: dict, path: Path) -> None:
    from port.util import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(dumps(table).encode()))


def load_table(path: Path) -> dict:
    try:
        table = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (write it with `{PROG} --out {path}`)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {e.lineno}: not JSON ({e.msg})") from None
    if not isinstance(table, dict) or table.get("schema") != SCHEMA:
        raise UserError(f"{path}: not a kernel table of schema {SCHEMA} (written by {PROG})")
    return table


def _rows(table: dict) -> dict[tuple[str, str, str], dict]:
    return {(f'{u["release"]}/{u["path"]}', k["mangled"], a): k[a]
            for u in table["units"] for k in u["kernels"] for a in table["arches"] if a in k}


def compare(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(failures, notes) of ``new`` (a fresh compile) against ``old`` (the committed table)."""
    fail, notes = [], []
    same = old["compiler"]["nvcc"] == new["compiler"]["nvcc"]
    if old["arches"] != new["arches"]:
        fail.append(f"arches {old['arches']} in the table, {new['arches']} compiled")
    newu = {(u["release"], u["path"]): u for u in new["units"]}
    for u in old["units"]:
        key = (u["release"], u["path"])
        n = newu.get(key)
        if n is None:
            fail.append(f"{'/'.join(key)}: in the table, not compiled now")
        elif u["compiled"] and not n["compiled"]:
            fail.append(f"{'/'.join(key)}: compiled, now fails: "
                        + (n["diagnostics"][0] if n["diagnostics"] else "(no diagnostic)"))
        elif u["sha256"] != n["sha256"]:
            fail.append(f"{'/'.join(key)}: the table was made from other bytes (sha256)")
    orows, nrows = _rows(old), _rows(new)
    gone = sorted(set(orows) - set(nrows))
    for src, mangled, arch in gone[:5]:
        fail.append(f"{src}: kernel {mangled} for {arch} compiled, no longer does")
    if len(gone) > 5:
        fail.append(f"... and {len(gone) - 5} more kernels that no longer compile")
    added = sorted(set(nrows) - set(orows))
    changed = sorted(k for k in set(orows) & set(nrows) if orows[k] != nrows[k])
    oprobes = {p["id"]: p for p in old["probes"]}
    for p in new["probes"]:
        o = oprobes.get(p["id"])
        if o is not None and (o["compiled"], o["confirmed"]) != (p["compiled"], p["confirmed"]):
            fail.append(f"probe {p['id']}: the table says compiled={o['compiled']} "
                        f"confirmed={o['confirmed']}, now compiled={p['compiled']} "
                        f"confirmed={p['confirmed']}"
                        + (f" ({p['errors'][0]})" if p["errors"] else ""))
        elif same and o is not None and o["errors"] != p["errors"]:
            fail.append(f"probe {p['id']}: other compiler messages than the table's")
    what = f"{len(changed)} kernel rows with other numbers, {len(added)} new"
    if same:
        if changed or added:
            src, mangled, arch = (changed or added)[0]
            fail.append(f"nvcc {new['compiler']['nvcc']} as in the table, yet {what} (first: "
                        f"{src} {mangled} {arch}); the table is stale: `{PROG} --out FILE`")
        for key in ("flags", "shims"):
            if old[key] != new[key]:
                fail.append(f"{key}: {old[key]} in the table, {new[key]} now")
    else:
        notes.append(f"nvcc {new['compiler']['nvcc']} here, {old['compiler']['nvcc']} in the "
                     f"table: {what} (not a failure; the table holds what its nvcc gave)")
    return fail, notes


# ---------------------------------------------------------------------------------------------
# the command line

def summary_lines(table: dict) -> list[str]:
    lines = []
    for u in table["units"]:
        src = f'{u["release"]}/{u["path"]}'
        if not u["compiled"]:
            lines.append(f"{src:45} FAILED: {u['diagnostics'][0] if u['diagnostics'] else ''}")
            continue
        parts = []
        for a in table["arches"]:
            ks = [k[a] for k in u["kernels"] if a in k]
            if not ks:
                continue
            regs = [k["registers"] for k in ks]
            spills = sum(k["spill_stores"] + k["spill_loads"] for k in ks)
            parts.append(f"{a}: {len(ks)} kernels, regs {min(regs)}-{max(regs)}, "
                         f"spill {spills} B, smem max {max(k['smem'] for k in ks)} B")
        lines.append(f"{src:45} " + "; ".join(parts))
    for p in table["probes"]:
        state = "compiles" if p["compiled"] else (p["errors"][0] if p["errors"] else "fails")
        lines.append(f"probe {p['id']:30} {'confirmed' if p['confirmed'] else 'NOT confirmed'}: "
                     f"{state}")
    return lines


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--out", type=Path, metavar="FILE", help="write the table (JSON) here")
    g.add_argument("--check", type=Path, metavar="FILE",
                   help="compile afresh and compare with this table (exit 1 on a regression)")
    g.add_argument("--which", action="store_true",
                   help="print the nvcc, demangler and headers that would be used, and stop")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="files compiled at once (default: the number of cores)")
    p.add_argument("--arch", action="append", choices=("sm_80", "sm_86", "sm_89", "sm_90"),
                   help=f"an architecture (repeatable; default: {' '.join(ARCHES)})")
    p.add_argument("--only", action="append", metavar="RELEASE/PATH",
                   help="compile only this file (repeatable; no probes)")
    return p


@main_guard(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"-j {args.jobs}: expected a positive number of files at once")
    units, probes = UNITS, PROBES
    if args.only:
        known = {u.source: u for u in UNITS}
        bad = [o for o in args.only if o not in known]
        if bad:
            raise UserError(f"--only {bad[0]}: not one of {', '.join(known)}")
        units, probes = tuple(known[o] for o in args.only), ()
    arches = tuple(args.arch) if args.arch else ARCHES
    if args.check and (args.only or args.arch):
        raise UserError("--check compiles what the table holds: no --only or --arch")
    old = load_table(args.check) if args.check else None
    with tempfile.TemporaryDirectory(prefix="alexnet-kernels-") as tmp:
        tc = toolchain(Path(tmp))
        print(f"nvcc {tc.version}: {tc.nvcc} ({tc.origin}); demangler: {tc.demangler_name}")
        if args.which:
            for d in tc.include_dirs:
                print(f"include: {d}")
            for m in tc.missing:
                print(f"missing: {m}")
            return 2 if tc.missing else 0
        table = build_table(tc, units, arches, probes, jobs=args.jobs, build=Path(tmp))
    for line in summary_lines(table):
        print(line)
    t = table["_timing"]
    print(f"compiled {len(units)} files and {len(probes)} probes in {t['wall_s']:.1f} s wall, "
          f"{t['cpu_s']:.1f} s CPU, {t['jobs']} at a time (" + ", ".join(
              f"{Path(k).name} {v:.1f} s" for k, v in t["units"].items()) + ")")
    if args.out:
        write_table(table, args.out)
        print(f"wrote {args.out}")
    if old is not None:
        fail, notes = compare(old, table)
        for n in notes:
            print(f"note: {n}")
        for f in fail:
            print(f"FAIL: {f}", file=sys.stderr)
        if fail:
            return 1
        print(f"{args.check}: every file and kernel of the table compiles as it says")
    bad = [u for u in table["units"] if not u["compiled"]]
    return 1 if bad and not args.check else 0


if __name__ == "__main__":
    sys.exit(main())
